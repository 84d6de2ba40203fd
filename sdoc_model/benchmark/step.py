"""Benchmark section 2: a full training step of every variant on a Llama-shaped model; and
section 3: the memory queue's size over a long run."""

from __future__ import annotations

import copy
import dataclasses
import functools
import multiprocessing
import sys
from collections import Counter
from collections.abc import Callable

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from sdoc_model.base_models.shapes import MODEL_SHAPES, SMOLLM2_135M
from sdoc_model.benchmark.measure import (
    MiB,
    best_times,
    peak_allocated_bytes,
    print_table,
    warm_up,
)
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.memory_queue import ExpertMemoryQueue
from sdoc_model.method.variants import BASE, LORA, LORA_MOE, SPARSEDOCTOR, VARIANTS, build_model
from sdoc_model.train.data import IGNORE_INDEX
from sdoc_model.train.trainer import lm_loss_sum
from sdoc_model.utils.allocator import keep_freed_memory

RESPONSE_TOKENS = 2
# Steps are timed once they stop page-faulting: while the heap grows to the working set of
# every resident model a step pays for it (at the SmolLM2-135M shape on 2 CPU cores, after the
# layer benchmarks: a LoRA step took 5.5, 6.0, 4.6 then 4.0 s, with 731k, 337k, 107k, 3k
# faults of 4 KiB).
MAX_WARMUP_ROUNDS = 6
WARM_FAULT_LIMIT = 64 * MiB
LORA_NO_DROPOUT = f"{LORA}, dropout 0"


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose (frozen) parameters are shared with `model`, so variants can coexist."""
    return copy.deepcopy(model, memo={id(p): p for p in model.parameters()})


def training_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    """One optimizer step as the trainer takes it (forward, LM loss on the labelled tokens +
    auxiliary losses, backward, AdamW); a frozen model runs its forward only."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        return torch.no_grad()(lambda: lm_loss_sum(model, batch))
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    scored = int((batch["labels"] != IGNORE_INDEX).sum())

    def step():
        loss = lm_loss_sum(model, batch) / scored
        if hasattr(model, "aux_loss"):
            loss = loss + model.aux_loss()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def random_batch(vocab: int, batch: int, seq_len: int) -> dict[str, torch.Tensor]:
    """Random tokens labelled like fine-tuning data: the last RESPONSE_TOKENS real tokens of
    each sequence (an answer and its EOS) are scored."""
    input_ids = torch.randint(0, vocab, (batch, seq_len))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, seq_len - seq_len // 4 :] = 0  # one padded sequence: masking is exercised
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, length in enumerate(attention_mask.sum(dim=1).tolist()):
        response = slice(length - RESPONSE_TOKENS, length)
        labels[row, response] = input_ids[row, response]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def linear_matmuls(model: nn.Module, tokens: int, scored: int) -> Counter:
    """((out_features, in_features), rows) -> how many of the model's linear layers multiply
    that many rows: every token, but the LM head only at the `scored` tokens."""
    head = model.get_output_embeddings()
    return Counter(
        (tuple(m.weight.shape), scored if m is head else tokens)
        for m in model.modules()
        if isinstance(m, nn.Linear)
    )


def forward_matmul_flops(model: nn.Module, tokens: int, scored: int) -> float:
    """FLOPs of the linear layers' forward matmuls (2 x parameters per row); a frozen-base step
    doubles them for the input gradients."""
    return sum(
        count * 2 * rows * in_features * out_features
        for ((out_features, in_features), rows), count in linear_matmuls(
            model, tokens, scored
        ).items()
    )


def gemm_bound_seconds(
    model: nn.Module, tokens: int, scored: int, repeats: int
) -> tuple[float, float]:
    """(seconds, FLOP/s): the floor of a frozen-base training step, the forward and
    input-gradient matmuls of its linear layers (4 x parameters FLOP per token; the LM head
    only at the `scored` tokens) at the CPU's GEMM rate measured on the model's own shapes.
    Attention scores and the adapters are extra work, so a step can only come near it."""
    seconds = 0.0
    for ((out_features, in_features), rows), count in linear_matmuls(model, tokens, scored).items():
        x, weight = torch.randn(rows, in_features), torch.randn(out_features, in_features)
        matmul = functools.partial(torch.matmul, x, weight.T)
        seconds += count * best_times({"matmul": matmul}, repeats)["matmul"]
    return 2 * seconds, forward_matmul_flops(model, tokens, scored) / seconds


def step_matmul_flops(model: nn.Module, frozen: nn.Module, tokens: int, scored: int) -> float:
    """The matmul FLOPs of a training step: the frozen model's linear layers (forward and input
    gradient, 4 x parameters per row) plus every trainable parameter at every token (forward,
    input and weight gradients: 6 x parameters), which is what dense adapters and the stacked
    experts compute. Attention scores are left out, as in the FLOP bound."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return 2 * forward_matmul_flops(frozen, tokens, scored) + 6 * tokens * trainable


def adapter_state_bytes(model: nn.Module) -> int:
    """Trainable parameters with their gradients and AdamW's two moments, plus memory queues."""
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    queues = model.queue_state_dict() if hasattr(model, "queue_state_dict") else {}
    return 4 * trainable + sum(t.numel() * t.element_size() for t in queues.values())


def bench_model_step(
    shape: str, batch: int, seq_len: int, config: SparseDoctorConfig, repeats: int, memory: bool
) -> None:
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(**MODEL_SHAPES[shape])).requires_grad_(False)
    inputs = random_batch(llama.config.vocab_size, batch, seq_len)
    models = {name: build_model(name, frozen_copy(llama), config).train() for name in VARIANTS}
    # peft LoRA without its dropout masks: what they cost (aten::bernoulli_, slow on a CPU).
    no_dropout = dataclasses.replace(config, dropout=0.0)
    models[LORA_NO_DROPOUT] = build_model(LORA, frozen_copy(llama), no_dropout).train()
    steps = {name: training_step(model, inputs) for name, model in models.items()}
    warmup_rounds = warm_up(steps, MAX_WARMUP_ROUNDS, WARM_FAULT_LIMIT)
    times = best_times(steps, repeats, warmup=0)
    tokens, scored = batch * seq_len, int((inputs["labels"] != IGNORE_INDEX).sum())
    bound, rate = gemm_bound_seconds(llama, tokens, scored, max(repeats, 3))
    flops = {
        name: step_matmul_flops(models[name], llama, tokens, scored)
        for name in (LORA, SPARSEDOCTOR)
    }
    peaks = {name: peak_allocated_bytes(step) for name, step in steps.items()} if memory else {}
    rows = [
        [
            name + (" (forward only)" if name == BASE else ""),
            f"{1e3 * times[name]:.0f}",
            f"{times[name] / times[LORA]:.3f}x",
            f"{peaks[name] / MiB:.0f}" if memory else "-",
            f"{peaks[name] / peaks[LORA]:.2f}x" if memory else "-",
            f"{adapter_state_bytes(model) / MiB:.1f}",
        ]
        for name, model in models.items()
    ]
    n_params = sum(p.numel() for p in llama.parameters()) / 1e6
    print_table(
        f"training step (fwd+bwd+AdamW), {shape}-shaped Llama ({n_params:.0f}M params), "
        f"batch {batch}x{seq_len}, the last {RESPONSE_TOKENS} tokens of each scored",
        rows,
        ["variant", "ms", "time/lora", "peak MiB", "peak/lora", "adapter state MiB"],
    )
    warmed = (
        f"after {warmup_rounds} warm-up rounds"
        if warmup_rounds > 0
        else f"with page faults still, after {MAX_WARMUP_ROUNDS} warm-up rounds"
    )
    print(
        f"timed {warmed} (until no step page-faults more than {WARM_FAULT_LIMIT // MiB} MiB)\n"
        f"{SPARSEDOCTOR}/{LORA} {times[SPARSEDOCTOR] / times[LORA]:.3f}x (target at the "
        f"{SMOLLM2_135M} shape: <= 1.05); their matmul FLOPs (4 x frozen linear + 6 x "
        f"trainable params per token) {flops[SPARSEDOCTOR] / flops[LORA]:.3f}x; "
        f"contrastive+queue: {SPARSEDOCTOR}/{LORA_MOE} "
        f"{times[SPARSEDOCTOR] / times[LORA_MOE]:.3f}x\n"
        f"{LORA} step at {bound / times[LORA]:.0%} of the FLOP bound (target at the "
        f"{SMOLLM2_135M} shape: >= 65%), {bound / times[LORA_NO_DROPOUT]:.0%} without its "
        f"dropout masks: {1e3 * bound:.0f} ms = 4 x linear-layer params x tokens (LM head: "
        f"scored tokens) at the measured GEMM rate, {rate / 1e9:.0f} GFLOP/s"
    )


def bench_model_step_in_fresh_process(threads: int, *step_args) -> None:
    """bench_model_step in a new process, its output on this one's. A training step's time
    depends on the heap it runs in: after the layer sections, a LoRA step at the SmolLM2-135M
    shape took 4.0-4.4 s, in a fresh process 3.8-3.9 s; a training job is a fresh process."""
    sys.stdout.flush()
    process = multiprocessing.get_context("spawn").Process(
        target=_bench_model_step, args=(threads, *step_args)
    )
    process.start()
    process.join()
    if process.exitcode:
        raise RuntimeError(
            f"the training-step benchmark at the {step_args[0]} shape failed (exit code "
            f"{process.exitcode}); its traceback is above"
        )


def _bench_model_step(threads: int, *step_args) -> None:
    keep_freed_memory()
    torch.set_num_threads(threads)
    bench_model_step(*step_args)
    sys.stdout.flush()


def bench_queue(config: SparseDoctorConfig, dim: int) -> None:
    """The queue's bytes after 10 and after 10,000 enqueues of a batch: constant, same storage."""
    queue = ExpertMemoryQueue(config.queue_size, dim)
    rows = 4 * config.num_experts
    batch = torch.randn(rows, dim), torch.arange(rows) % config.num_experts
    storage = queue.features.untyped_storage().data_ptr()
    sizes = {}
    for step in range(1, 10_001):
        queue.enqueue(*batch)
        if step in (10, 10_000):
            sizes[step] = queue.nbytes()
    same_storage = queue.features.untyped_storage().data_ptr() == storage
    print(
        f"\n== memory queue ({config.queue_size} entries x {dim}) ==\n"
        f"bytes after 10 steps: {sizes[10]:,d}; after 10,000 steps: {sizes[10_000]:,d}; "
        f"constant: {sizes[10] == sizes[10_000] and same_storage}"
    )
