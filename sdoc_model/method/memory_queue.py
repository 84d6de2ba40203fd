"""The expert memory queue: a fixed-size FIFO ring of past expert representations (MoCo-style)."""

from __future__ import annotations

import torch
from torch import nn


class ExpertMemoryQueue(nn.Module):
    """`size` slots of (representation, expert id), overwritten oldest-first.

    All state lives in registered buffers allocated once (`features`, `labels`, the write pointer
    `ptr` and the fill count `count`), so memory is `size * (dim * itemsize + 8) + 16` bytes however
    long the run, the state travels with `.to()` and round-trips through a state dict exactly,
    and enqueueing needs no host synchronisation. Empty slots have label -1.
    """

    def __init__(self, size: int, dim: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        if size <= 0 or dim <= 0:
            raise ValueError(f"ExpertMemoryQueue needs size > 0 and dim > 0, got {size=}, {dim=}")
        self.size = size
        self.register_buffer("features", torch.zeros(size, dim, dtype=dtype))
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Append rows (detached), overwriting the oldest entries once the ring is full."""
        if features.shape[0] != labels.shape[0] or features.shape[1:] != self.features.shape[1:]:
            raise ValueError(
                f"enqueue expects features (n, {self.features.shape[1]}) and labels (n,), "
                f"got {tuple(features.shape)} and {tuple(labels.shape)}"
            )
        features, labels = features[-self.size :], labels[-self.size :]  # only the newest fit
        num_new = features.shape[0]
        slots = (self.ptr + torch.arange(num_new, device=self.ptr.device)) % self.size
        self.features.index_copy_(0, slots, features.to(self.features.dtype))
        self.labels.index_copy_(0, slots, labels.to(self.labels.dtype))
        self.ptr.copy_((self.ptr + num_new) % self.size)
        self.count.copy_((self.count + num_new).clamp_max(self.size))

    def ordered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored (features, labels), oldest first; includes empty slots until the ring is
        full."""
        order = (
            self.ptr - self.count + torch.arange(self.size, device=self.ptr.device)
        ) % self.size
        return self.features[order], self.labels[order]

    def nbytes(self) -> int:
        return sum(buffer.numel() * buffer.element_size() for buffer in self.buffers())

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.features.shape[1]}"
