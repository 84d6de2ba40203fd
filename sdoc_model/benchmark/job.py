"""Benchmark section 5: a whole training job against its own steps.

The job is `python -m sdoc_model.train` in a fresh process, as the workflow runs it: start-up,
model loading, tokenisation, the steps, logging and checkpoints. Its real (unpadded) tokens per
second of wall time are compared with the rate its steps reach (the summary's tokens_per_s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.8  # the job's real tokens/s at least this share of its steps' rate


def bench_training_job(
    base_model: Path, train_file: Path, config: Path, variant: str, steps: int, threads: int
) -> float:
    """Run one training job of `steps` steps; print and return job rate / steps' rate."""
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        command = [
            sys.executable, "-m", "sdoc_model.train", "--variant", variant,
            "--base-model", str(base_model), "--train-file", str(train_file),
            "--model-dir", str(folder / "model"), "--log-dir", str(folder / "logs"),
            "--checkpoint-dir", str(folder / "checkpoints"), "--config", str(config),
            "--set", f"max_steps={steps}", "--set", f"save_every={max(steps // 2, 1)}",
        ]  # fmt: skip
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        subprocess.run(command, check=True, env=environment, capture_output=True)
        wall = time.perf_counter() - start
        summary = json.loads((folder / "logs" / "summary.json").read_text())
    job_rate, step_rate = summary["tokens"] / wall, summary["tokens_per_s"]
    print(
        f"\n== training job ({variant}, {steps} steps, {threads} thread(s), {config}) ==\n"
        f"wall {wall:.1f} s, of which steps {summary['wall_time_s']:.1f} s; real tokens/s: job "
        f"{job_rate:.0f}, steps {step_rate:.0f}; job/steps {job_rate / step_rate:.2f} "
        f"(target >= {TARGET})"
    )
    return job_rate / step_rate
