"""The model of a training run: on its device and precision, seeded, wrapped for DDP."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sdoc_model.base_models.prepare import load_base_model
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.variants import build_model
from sdoc_model.train.distributed import Processes


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def build_run_model(
    variant: str,
    base_model_dir: Path,
    adapter_config: SparseDoctorConfig,
    precision: str,
    processes: Processes,
    seed: int,
    attn_implementation: str = "sdpa",
    gradient_checkpointing: bool = False,
) -> nn.Module:
    """The variant on the device, in training mode. A bf16 run keeps the frozen base in bf16;
    the adapters stay in float32 either way."""
    base_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    base_model, _ = load_base_model(
        base_model_dir, base_dtype, processes.device, attn_implementation
    )
    seed_everything(seed)  # the adapter's initial weights: the same on every process
    model = build_model(variant, base_model, adapter_config).train()
    if gradient_checkpointing:
        # peft's model passes the call on to the base model; SparseDoctor's adds its replay.
        model.activation_checkpointing_enable()
    seed_everything(seed + 1_000_003 * processes.rank)  # each process's own dropout and jitter
    return model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def wrap_ddp(model: nn.Module) -> DistributedDataParallel:
    """DDP that leaves buffers alone: each process's memory queues are its own (and restored from
    its own checkpoint file), so neither construction nor forwards may copy rank 0's over them.
    `broadcast_buffers=False` is still the documented way to keep buffers rank-local."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning
        )
        return DistributedDataParallel(model, broadcast_buffers=False)


def device_name(processes: Processes) -> str:
    device = processes.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"{processes.world_size} x {name}" if processes.distributed else name
