"""What a run reports: one JSON line per optimizer step (its losses, learning rate, speed, peak
memory and, for mixtures of experts, router entropy and expert load per adapted layer)."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import torch
from torch import nn

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.model import SparseDoctorModel
from sdoc_model.train.data import StepData
from sdoc_model.utils.atomic import write_text

METRIC_KEYS = (
    "step", "lm_loss", "lb_loss", "z_loss", "cl_loss", "loss", "lr", "tokens_per_s",
    "peak_memory_bytes", "router_entropy", "expert_load",
)  # fmt: skip


def peak_memory(device: torch.device) -> tuple[int, str]:
    """(bytes, what was measured): allocated tensors on CUDA, the process's max RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"


class MetricsLog:
    """`metrics.jsonl`, one line per optimizer step, appended as the run goes.

    A resumed run starts the file again from the copy in its checkpoint (the lines up to the
    checkpoint's step): lines written after it, before the kill, are dropped, and a file that
    was deleted meanwhile (Snakemake removes the outputs of a failed job) comes back whole.
    """

    def __init__(self, path: Path, resumed_from: Path | None):
        write_text(path, resumed_from.read_text(encoding="utf-8") if resumed_from else "")
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def micro_step_sums(
    model: nn.Module, lm_sum: torch.Tensor, aux: torch.Tensor | None, real_tokens: int
) -> torch.Tensor:
    """[LM-loss sum, lb, z, cl, weighted aux, per-layer expert load and router entropy], the
    routing statistics weighted by the micro-batch's real tokens so that sums give token means."""
    values = [lm_sum.detach().reshape(1)]
    if isinstance(model, SparseDoctorModel):
        losses = model.aux_losses()
        stats = model.routing_stats().values()
        values += [
            torch.stack([losses["lb"], losses["z"], losses["cl"], aux]).detach(),
            torch.stack([s["load"] for s in stats]).flatten() * real_tokens,
            torch.stack([s["entropy"] for s in stats]) * real_tokens,
        ]
    return torch.cat([v.to(torch.float64) for v in values])


def step_record(
    model: nn.Module,
    effective: SparseDoctorConfig,
    step: int,
    sums: list[float],
    data: StepData,
    world_size: int,
) -> dict:
    """The metrics of one optimizer step from the sums over its micro-batches and processes."""
    lm_loss = sums[0] / data.response_tokens
    record = {
        "step": step,
        "lm_loss": lm_loss,
        "lb_loss": None,
        "z_loss": None,
        "cl_loss": None,
    }
    if not isinstance(model, SparseDoctorModel):
        return {**record, "loss": lm_loss}
    forwards = len(data.micro_batches) * world_size
    lb, z, cl, aux = (value / forwards for value in sums[1:5])
    contrastive = effective.cl_weight > 0
    record.update(lb_loss=lb, z_loss=z, cl_loss=cl if contrastive else None, loss=lm_loss + aux)
    names, experts = list(model.adapted_layers), effective.num_experts
    loads, entropies = sums[5 : 5 + len(names) * experts], sums[5 + len(names) * experts :]
    real = sum(data.real_tokens)
    record["router_entropy"] = {name: entropies[i] / real for i, name in enumerate(names)}
    record["expert_load"] = {
        name: [load / real for load in loads[i * experts : (i + 1) * experts]]
        for i, name in enumerate(names)
    }
    return record
