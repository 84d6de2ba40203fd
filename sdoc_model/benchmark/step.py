"""Benchmark section 2: a full training step of every variant on a Llama-shaped model; and
section 3: the memory queue's size over a long run."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from sdoc_model.base_models.shapes import MODEL_SHAPES, SMOLLM2_135M
from sdoc_model.benchmark.measure import MiB, best_times, peak_allocated_bytes, print_table
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.memory_queue import ExpertMemoryQueue
from sdoc_model.method.variants import BASE, LORA, LORA_MOE, SPARSEDOCTOR, VARIANTS, build_model


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose (frozen) parameters are shared with `model`, so variants can coexist."""
    return copy.deepcopy(model, memo={id(p): p for p in model.parameters()})


def training_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    """One optimizer step (forward, LM + auxiliary losses, backward, AdamW); a frozen model
    runs its forward only."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        return torch.no_grad()(lambda: model(**batch))
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)

    def step():
        loss = model(**batch).loss
        if hasattr(model, "aux_loss"):
            loss = loss + model.aux_loss()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def random_batch(vocab: int, batch: int, seq_len: int) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(0, vocab, (batch, seq_len))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, seq_len - seq_len // 4 :] = 0  # one padded sequence: masking is exercised
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


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
    steps = {name: training_step(model, inputs) for name, model in models.items()}
    for step in steps.values():
        step()  # allocate the optimizer state before measuring
    times = best_times(steps, repeats, warmup=0)
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
        f"batch {batch}x{seq_len}",
        rows,
        ["variant", "ms", "time/lora", "peak MiB", "peak/lora", "adapter state MiB"],
    )
    print(
        f"{SPARSEDOCTOR}/{LORA} {times[SPARSEDOCTOR] / times[LORA]:.3f}x; contrastive+queue: "
        f"{SPARSEDOCTOR}/{LORA_MOE} {times[SPARSEDOCTOR] / times[LORA_MOE]:.3f}x "
        f"(targets at the {SMOLLM2_135M} shape: <= 1.15 and <= 1.05)"
    )


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
