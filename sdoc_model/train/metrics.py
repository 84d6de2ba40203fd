"""What a run reports: one JSON line per optimizer step, and peak memory."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import torch

from sdoc_model.utils.atomic import write_text


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

    def close(self) -> None:
        self._file.close()
