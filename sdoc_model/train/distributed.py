"""Several processes through torchrun and PyTorch DDP: gloo on the CPU, nccl on CUDA.

The training code calls the same helpers whether it runs alone or under torchrun; with one
process they do nothing. (Starting the processes: launch.py.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start(num_processes: int) -> Processes:
    """Join the process group torchrun set up (if any) and pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size != num_processes:
        raise ValueError(
            f"training.num_processes is {num_processes} but {world_size} process(es) were launched"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"training.num_processes: process {local_rank} has no GPU of its own "
                f"({torch.cuda.device_count()} visible); use at most one process per GPU"
            )
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if world_size > 1 else 0
    return Processes(rank, world_size, device)


def stop(processes: Processes) -> None:
    if processes.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(processes: Processes) -> None:
    if processes.distributed:
        dist.barrier()


def sum_over_processes(tensor: torch.Tensor, processes: Processes) -> torch.Tensor:
    if processes.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def max_over_processes(value: int, processes: Processes) -> int:
    if not processes.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=processes.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())
