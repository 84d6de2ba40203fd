"""Start several training processes through torchrun. No torch import here: the process that
only starts the others needs none (a second or more per training job)."""

from __future__ import annotations

import os
import subprocess
import sys


class DistributedRunError(ChildProcessError):
    """A process of a torchrun launch failed; its own error is in the output above."""


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ


def relaunch_with_torchrun(num_processes: int, cli_args: list[str]) -> None:
    """Run `python -m sdoc_model.train CLI_ARGS` in `num_processes` processes on this machine."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={num_processes}", "-m", "sdoc_model.train", *cli_args,
    ]  # fmt: skip
    result = subprocess.run(command)
    if result.returncode:
        raise DistributedRunError(
            f"distributed training ({num_processes} processes) failed with exit code "
            f"{result.returncode}; the failing process's error is printed above"
        )
