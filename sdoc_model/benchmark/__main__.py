"""Speed and memory of SparseDoctor against peft LoRA and the per-expert loops, side by side.

    python -m sdoc_model.benchmark            # the full run: a few minutes on 2 CPU cores
    python -m sdoc_model.benchmark --quick    # a smoke test of every section in seconds

Every compared implementation runs in the same process on the same inputs, interleaved in rounds
so that drift on a shared machine hits them alike, and each reports its best round: the least
disturbed estimate. Peak memory is the high-water mark of tensor memory allocated during one
run, counted by the torch profiler. Ratios are against peft LoRA of rank k*r.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import os
import time
from collections.abc import Callable

import torch
from peft import inject_adapter_in_model
from torch import nn
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile
from transformers import LlamaConfig, LlamaForCausalLM

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.layer import LoRAMoELinear
from sdoc_model.method.reference import DispatchExpertLoop, MaskedExpertLoop
from sdoc_model.method.variants import VARIANTS, build_model, lora_config

MiB = 2**20
LAYER_SIZES = {"135M": (576, 1536), "7B": (4096, 11008), "tiny": (64, 128)}
LAYER_TOKENS = {"135M": 2048, "7B": 512, "tiny": 64}
MODEL_CONFIGS = {
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 256,
    },
    "135M": {  # SmolLM2-135M's shape
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
    },
}


class _Holder(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, x):
        return self.linear(x)


def peft_lora_layer(base: nn.Linear, config: SparseDoctorConfig) -> nn.Module:
    """peft's own LoRA Linear around `base`: the `lora` variant's settings (rank k*r, same scaling)."""
    lora = lora_config(dataclasses.replace(config, target_modules=["linear"]))
    return inject_adapter_in_model(lora, _Holder(base))


# ---- measuring ----


def best_times(
    cases: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Best wall time of each case over `repeats` interleaved rounds, after `warmup` rounds."""
    times = {name: [] for name in cases}
    for round_index in range(warmup + repeats):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


@contextlib.contextmanager
def _stderr_silenced():
    """The profiler's C++ side prints start/stop lines to fd 2; keep the tables readable."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_memory(run: Callable[[], object]) -> int:
    """High-water mark (bytes) of CPU tensor memory allocated by `run` beyond what already existed."""
    with (
        _stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        run()
    allocations = []
    pending = list(prof.profiler.kineto_results.experimental_event_tree())
    while pending:
        event = pending.pop()
        if event.tag == _EventType.Allocation:
            allocations.append((event.start_time_ns, event.extra_fields.alloc_size))
        pending.extend(event.children)
    live = peak = 0
    for _, size in sorted(allocations):
        live += size
        peak = max(peak, live)
    return peak


def print_table(title: str, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n== {title} ==")
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


# ---- section 1: one adapted layer, forward + backward ----


def layer_cases(d_in: int, d_out: int, config: SparseDoctorConfig) -> dict[str, nn.Module]:
    base = nn.Linear(d_in, d_out, bias=False).requires_grad_(False)

    def moe(top_k: int) -> LoRAMoELinear:
        layer = LoRAMoELinear(
            base, config.num_experts, config.rank, top_k, config.alpha, config.dropout
        )
        nn.init.normal_(layer.lora_B, std=0.02)  # trained-looking weights: same cost, real values
        return layer

    sparse, dense = moe(config.top_k), moe(config.num_experts)
    k, e, r = config.top_k, config.num_experts, config.rank
    form = "grouped" if sparse.grouped_dispatch else "stacked"
    return {
        "base (frozen)": base,
        f"peft LoRA r={k * r}": peft_lora_layer(copy.deepcopy(base), config),
        f"LoRAMoE E={e} r={r} k={k} ({form})": sparse,
        f"LoRAMoE E={e} r={r} dense (stacked)": dense,
        "masked loop (MOELoRA/LoRAMoE)": MaskedExpertLoop(sparse),
        "dispatch loop (MixLoRA/Mixtral)": DispatchExpertLoop(sparse),
    }


def bench_layer(
    size: str, tokens: int, config: SparseDoctorConfig, repeats: int, memory: bool
) -> None:
    d_in, d_out = LAYER_SIZES[size]
    torch.manual_seed(0)
    cases = layer_cases(d_in, d_out, config)
    x = torch.randn(tokens, d_in, requires_grad=True)
    grad_out = torch.randn(tokens, d_out)

    def fwd_bwd(module: nn.Module) -> Callable[[], None]:
        def run():
            x.grad = None
            module.zero_grad(set_to_none=True)
            module(x).backward(grad_out)

        return run

    for module in cases.values():
        module.train()
    runs = {name: fwd_bwd(module) for name, module in cases.items()}
    times = best_times(runs, repeats)
    peaks = {name: peak_memory(run) for name, run in runs.items()} if memory else {}
    names = list(cases)
    base_time, peft_time, stacked_time = times[names[0]], times[names[1]], times[names[2]]
    added = {name: t - base_time for name, t in times.items()}
    rows = [
        [
            name,
            f"{1e3 * t:.1f}",
            f"{1e3 * added[name]:.1f}",
            f"{t / peft_time:.2f}x",
            f"{added[name] / added[names[1]]:.2f}x" if i else "-",
            f"{peaks[name] / MiB:.1f}" if memory else "-",
        ]
        for i, (name, t) in enumerate(times.items())
    ]
    print_table(
        f"layer forward+backward, {size} up_proj {d_in}->{d_out}, {tokens} tokens, dropout {config.dropout}",
        rows,
        ["implementation", "ms", "added ms", "time/peft", "added/peft", "peak MiB"],
    )
    masked_ratio = added[names[4]] / added[names[2]]
    dispatch_ratio = added[names[5]] / added[names[2]]
    print(
        f"added time vs LoRAMoE top-k: masked loop {masked_ratio:.2f}x (target >= 4), "
        f"dispatch loop {dispatch_ratio:.2f}x (target >= 2); LoRAMoE top-k/base {stacked_time / base_time:.2f}x"
    )


def bench_dispatch(size: str, tokens: int, config: SparseDoctorConfig, repeats: int) -> None:
    """Added time of the stacked and the grouped (sorted dispatch) forms over a grid of E, r, k:
    where the `auto` dispatch rule comes from."""
    d_in, d_out = LAYER_SIZES[size]
    torch.manual_seed(0)
    base = nn.Linear(d_in, d_out, bias=False).requires_grad_(False)
    x = torch.randn(tokens, d_in, requires_grad=True)
    grad_out = torch.randn(tokens, d_out)
    rows = []
    for num_experts, rank, top_k in [
        (e, r, k) for e in (4, 8, 16) for r in (8, 16) for k in (1, 2, 4) if k < e
    ]:
        layers = {
            dispatch: LoRAMoELinear(
                base, num_experts, rank, top_k, config.alpha, config.dropout, dispatch=dispatch
            )
            for dispatch in ("stacked", "grouped")
        }
        runs = {"base": lambda: base(x).backward(grad_out)}
        runs |= {
            name: (lambda layer=layer: layer(x).backward(grad_out))
            for name, layer in layers.items()
        }
        times = best_times(runs, repeats)
        stacked, grouped = (times[name] - times["base"] for name in layers)
        auto = LoRAMoELinear(base, num_experts, rank, top_k, config.alpha).grouped_dispatch
        rows.append(
            [
                f"E={num_experts} r={rank} k={top_k}",
                f"{num_experts * rank}",
                f"{1e3 * stacked:.1f}",
                f"{1e3 * grouped:.1f}",
                "grouped" if grouped < stacked else "stacked",
                "grouped" if auto else "stacked",
            ]
        )
    print_table(
        f"dispatch sweep: added ms over the base layer, {size} {d_in}->{d_out}, {tokens} tokens",
        rows,
        ["experts", "E*r", "stacked", "grouped", "faster", "auto picks"],
    )


# ---- section 2: a full training step of a model, per variant ----


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose (frozen) parameters are shared with `model`, so variants can coexist."""
    return copy.deepcopy(model, memo={id(p): p for p in model.parameters()})


def bench_model_step(
    size: str, batch: int, seq_len: int, config: SparseDoctorConfig, repeats: int, memory: bool
) -> None:
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(**MODEL_CONFIGS[size])).requires_grad_(False)
    vocab = llama.config.vocab_size
    input_ids = torch.randint(0, vocab, (batch, seq_len))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, seq_len - seq_len // 4 :] = 0  # one padded sequence: masking is exercised
    labels = input_ids.masked_fill(attention_mask == 0, -100)

    def step_fn(model: nn.Module) -> Callable[[], None]:
        if not any(p.requires_grad for p in model.parameters()):

            @torch.no_grad()
            def forward_only():
                model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

            return forward_only
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        def step():
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            if hasattr(model, "aux_loss"):
                loss = loss + model.aux_loss()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    models = {
        variant: build_model(variant, frozen_copy(llama), config).train() for variant in VARIANTS
    }
    steps = {variant: step_fn(model) for variant, model in models.items()}
    for step in steps.values():
        step()  # allocate the optimizer state before measuring
    times = best_times(steps, repeats, warmup=0)
    peaks = {variant: peak_memory(step) for variant, step in steps.items()} if memory else {}
    lora_time = times["lora"]
    rows = []
    for variant, model in models.items():
        trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        queues = model.queue_state_dict() if hasattr(model, "queue_state_dict") else {}
        state = 4 * trainable + sum(
            t.numel() * t.element_size() for t in queues.values()
        )  # + grad + AdamW
        label = variant + (" (forward only)" if variant == "base" else "")
        rows.append(
            [
                label,
                f"{1e3 * times[variant]:.0f}",
                f"{times[variant] / lora_time:.3f}x",
                f"{peaks[variant] / MiB:.0f}" if memory else "-",
                f"{peaks[variant] / peaks['lora']:.2f}x" if memory else "-",
                f"{state / MiB:.1f}",
            ]
        )
    n_params = sum(p.numel() for p in llama.parameters()) / 1e6
    print_table(
        f"training step (fwd+bwd+AdamW), {size}-sized Llama ({n_params:.0f}M params), batch {batch}x{seq_len}",
        rows,
        ["variant", "ms", "time/lora", "peak MiB", "peak/lora", "adapter state MiB"],
    )
    print(
        f"sparsedoctor/lora {times['sparsedoctor'] / lora_time:.3f}x; contrastive+queue: "
        f"sparsedoctor/lora_moe {times['sparsedoctor'] / times['lora_moe']:.3f}x "
        "(targets at the 135M size: <= 1.15 and <= 1.05)"
    )


# ---- section 3: memory queue size over a run ----


def bench_queue(config: SparseDoctorConfig) -> None:
    from sdoc_model.method.memory_queue import ExpertMemoryQueue

    d_model = MODEL_CONFIGS["135M"]["hidden_size"]
    queue = ExpertMemoryQueue(config.queue_size, d_model)
    batch = (
        torch.randn(4 * config.num_experts, d_model),
        torch.arange(4 * config.num_experts) % config.num_experts,
    )
    storage = queue.features.untyped_storage().data_ptr()
    sizes = {}
    for step in range(1, 10_001):
        queue.enqueue(*batch)
        if step in (10, 10_000):
            sizes[step] = queue.nbytes()
    same_storage = queue.features.untyped_storage().data_ptr() == storage
    print(
        f"\n== memory queue ({config.queue_size} entries x {d_model}) ==\n"
        f"bytes after 10 steps: {sizes[10]:,d}; after 10,000 steps: {sizes[10_000]:,d}; "
        f"constant: {sizes[10] == sizes[10_000] and same_storage}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test")
    parser.add_argument(
        "--layer-sizes", default="135M,7B", help=f"comma list of {', '.join(LAYER_SIZES)}"
    )
    parser.add_argument(
        "--tokens", type=int, help="tokens per layer benchmark (default: 2048 at 135M, 512 at 7B)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per layer benchmark")
    parser.add_argument(
        "--models", default="tiny,135M", help=f"comma list of {', '.join(MODEL_CONFIGS)}"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument(
        "--step-repeats", type=int, default=2, help="timed rounds per training step"
    )
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the profiler's peak-memory runs"
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument(
        "--dispatch-sweep",
        action="store_true",
        help="also time stacked vs grouped dispatch over E, r, k",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.layer_sizes, args.models, args.repeats, args.step_repeats = "tiny", "tiny", 1, 1
        args.batch, args.seq_len = 2, 16
    if args.threads:
        torch.set_num_threads(args.threads)
    config = SparseDoctorConfig()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; SparseDoctor E={config.num_experts} "
        f"r={config.rank} k={config.top_k} alpha={config.alpha} dropout={config.dropout} "
        f"queue={config.queue_size}; best of {args.repeats} (layers) / {args.step_repeats} (steps) rounds"
    )
    for size in args.layer_sizes.split(","):
        bench_layer(
            size, args.tokens or LAYER_TOKENS[size], config, args.repeats, not args.no_memory
        )
    if args.dispatch_sweep:
        size = args.layer_sizes.split(",")[0]
        bench_dispatch(size, args.tokens or LAYER_TOKENS[size], config, args.repeats)
    for size in args.models.split(","):
        bench_model_step(
            size, args.batch, args.seq_len, config, args.step_repeats, not args.no_memory
        )
    bench_queue(config)


if __name__ == "__main__":
    main()
