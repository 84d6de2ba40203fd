"""A 7B-shaped GPU benchmark, ready before a GPU is: ``python -m sdoc_model.benchmark.gpu``.

Builds the paper's base model shape (Qwen2.5-7B: 28 decoder layers of 3584 wide, vocabulary
152,064) with random bf16 weights from its config (no download), at two shallow depths, and
measures, at the paper's micro-batch (2 x 1024 per GPU, the answer tokens scored), the training
step of `lora` and `sparsedoctor` with and without activation checkpointing: step time, tokens/s,
model FLOPs utilisation against the GPU's bf16 peak, and peak memory; plus the evaluation
forward's tokens/s. The whole model's figures are extrapolated from the two depths: each decoder
layer adds the same time and memory, so f(28) = f(d1) + (f(d2) - f(d1)) / (d2 - d1) * (28 - d1);
the per-layer slope is printed too. Runs in about two minutes on one H100/H200; on the CPU,
``--shape tiny`` is the smoke test the test suite runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from sdoc_model.benchmark.step import (
    RESPONSE_TOKENS,
    forward_matmul_flops,
    frozen_copy,
    random_batch,
    training_step,
)
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.variants import LORA, SPARSEDOCTOR, build_model
from sdoc_model.utils.cli import exit_on_error

QWEN25_7B = dict(
    hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
    num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
    tie_word_embeddings=False,
)  # fmt: skip
TINY = dict(QWEN25_7B, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, vocab_size=1024)  # fmt: skip
SHAPES = {"qwen2.5-7b": QWEN25_7B, "tiny": TINY}
# Each variant without and with activation checkpointing.
CASES = [f"{variant}{suffix}" for variant in (LORA, SPARSEDOCTOR) for suffix in ("", "+ckpt")]
BATCH = 2  # sequences per GPU in the paper profile (batch_size 8 over 4 processes)
# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def bf16_peak(device: torch.device, given: float | None) -> float | None:
    if given or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def step_flops(model: torch.nn.Module, tokens: int, scored: int) -> float:
    """A frozen-base step's model FLOPs: forward and input-gradient matmuls of every linear
    layer (4 x parameters per token; the LM head at the scored tokens only) plus attention's
    scores and weighted values, forward and input-gradient (4 x 2 x seq x width per token
    and layer, causal halves it)."""
    config = model.config
    seq = tokens // BATCH
    attention = 4 * 2 * seq * config.hidden_size * config.num_hidden_layers / 2
    return 2 * forward_matmul_flops(model, tokens, scored) + attention * tokens


def measure(base, variant, config, batch, steps, checkpointing, device) -> dict:
    """Best step time and peak memory of `variant` on a copy of `base` sharing its frozen
    weights (bf16 autocast, adapters fp32)."""
    model = build_model(variant, frozen_copy(base), config).train().to(device)
    if checkpointing:
        model.activation_checkpointing_enable()
    step = training_step(model, batch)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for index in range(steps + 1):  # the first allocates the optimizer state: not timed
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        with autocast:
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return {"step_s": min(times), "peak_bytes": peak}


@torch.inference_mode()
def measure_forward(base, batch, steps, device) -> float:
    """Best time of the evaluation's forward: the batch, no gradients, bf16."""
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def run_depth(shape: dict, layers: int, args, device) -> dict:
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = Qwen2Config(**{**shape, "num_hidden_layers": layers}, attn_implementation="sdpa")
    with torch.device(device):
        base = Qwen2ForCausalLM(config).to(dtype).requires_grad_(False)
    batch = {
        k: v.to(device) for k, v in random_batch(config.vocab_size, BATCH, args.seq_len).items()
    }
    figures = {"forward_s": measure_forward(base, batch, args.steps, device)}
    for variant in (LORA, SPARSEDOCTOR):
        for checkpointing in (False, True):
            key = f"{variant}{'+ckpt' if checkpointing else ''}"
            figures[key] = measure(
                base, variant, SparseDoctorConfig(), batch, args.steps, checkpointing, device
            )
    figures["flops"] = step_flops(base, BATCH * args.seq_len, BATCH * RESPONSE_TOKENS)
    return figures


def extrapolate(low: float, high: float, d1: int, d2: int, depth: int) -> tuple[float, float]:
    per_layer = (high - low) / (d2 - d1)
    return low + per_layer * (depth - d1), per_layer


def report(shallow: dict, deep: dict, args, shape: dict, peak: float | None) -> dict:
    d1, d2, depth = *args.depths, shape["num_hidden_layers"]
    tokens = BATCH * args.seq_len
    flops, _ = extrapolate(shallow["flops"], deep["flops"], d1, d2, depth)
    rows, result = [], {}
    for key in CASES:
        step, step_per_layer = extrapolate(
            shallow[key]["step_s"], deep[key]["step_s"], d1, d2, depth
        )
        memory, memory_per_layer = extrapolate(
            shallow[key]["peak_bytes"], deep[key]["peak_bytes"], d1, d2, depth
        )
        mfu = flops / step / (peak * 1e12) if peak else None
        result[key] = {
            "step_s": step, "step_s_per_layer": step_per_layer, "tokens_per_s": tokens / step,
            "mfu": mfu, "peak_gib": memory / 2**30, "peak_gib_per_layer": memory_per_layer / 2**30,
        }  # fmt: skip
        rows.append(
            f"{key:18s} {1e3 * step:9.0f} {1e3 * step_per_layer:9.1f} {tokens / step:10.0f} "
            f"{'-' if mfu is None else f'{mfu:.1%}':>7s} {memory / 2**30:9.1f} "
            f"{memory_per_layer / 2**30:9.2f}"
        )
    forward, _ = extrapolate(shallow["forward_s"], deep["forward_s"], d1, d2, depth)
    result["eval_forward_tokens_per_s"] = tokens / forward
    for name in ("", "+ckpt"):
        result[f"{SPARSEDOCTOR}/{LORA}{name}"] = (
            result[f"{SPARSEDOCTOR}{name}"]["step_s"] / result[f"{LORA}{name}"]["step_s"]
        )
    print(
        f"== {depth}-layer model from depths {d1} and {d2}; micro-batch {BATCH} x {args.seq_len}; "
        f"bf16 peak {peak or '?'} TFLOP/s ==\n"
        f"{'variant':18s} {'step ms':>9s} {'ms/layer':>9s} {'tokens/s':>10s} {'MFU':>7s} "
        f"{'peak GiB':>9s} {'GiB/layer':>9s}\n" + "\n".join(rows) + "\n"
        f"{SPARSEDOCTOR}/{LORA} {result[f'{SPARSEDOCTOR}/{LORA}']:.3f}x, with checkpointing "
        f"{result[f'{SPARSEDOCTOR}/{LORA}+ckpt']:.3f}x; evaluation forward "
        f"{result['eval_forward_tokens_per_s']:.0f} tokens/s"
    )
    return result


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sdoc_model.benchmark.gpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--shape", choices=SHAPES, default="qwen2.5-7b")
    add("--depths", type=int, nargs=2, default=(2, 4), help="the two depths measured")
    add("--seq-len", type=int, default=1024)
    add("--steps", type=int, default=3, help="timed steps per case (best one kept)")
    add("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add("--peak-tflops", type=float, help="the GPU's bf16 peak (default: from its name)")
    add("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if not 0 < args.depths[0] < args.depths[1]:
        raise ValueError(f"--depths must be two increasing positive depths, got {args.depths}")
    device, shape = torch.device(args.device), SHAPES[args.shape]
    peak = bf16_peak(device, args.peak_tflops)
    shallow, deep = (run_depth(shape, depth, args, device) for depth in args.depths)
    result = report(shallow, deep, args, shape, peak)
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, **result},
                                       indent=2, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
