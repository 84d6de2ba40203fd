"""Supervised fine-tuning of one variant: resumable, on one process or several (torchrun + DDP).

`train` checks everything it can before a model is loaded, relaunches itself under torchrun
when asked for several processes, and hands over to a `Trainer` (trainer.py): build the model,
resume from the newest checkpoint, then one `step` per optimizer step, each logged (one host
sync per step) and every `save_every` steps checkpointed. The final adapter is written at the
end only.
"""

from __future__ import annotations

import faulthandler
import json
import os
from pathlib import Path

import yaml

from sdoc_model.train import launch
from sdoc_model.train.config import RunPaths, check_target_modules, validate_run
from sdoc_model.utils.allocator import keep_freed_memory
from sdoc_model.utils.atomic import write_text


def train(
    variant: str,
    base_model_dir: str | Path,
    train_file: str | Path,
    model_dir: str | Path,
    log_dir: str | Path,
    checkpoint_dir: str | Path,
    adapter: dict,
    training: dict,
    model_name: str | None = None,
    threads: int | None = None,
) -> dict:
    """Fine-tune `variant` on `train_file`; write the adapter, the metrics and the summary.

    `adapter` holds SparseDoctorConfig fields, `training` TrainingConfig fields. Reruns resume
    from the newest checkpoint in `checkpoint_dir`. `threads`: torch's CPU threads when this
    process trains (torchrun gives each of several processes one). Returns the summary
    (log_dir/summary.json).
    """
    paths = RunPaths(*map(Path, (base_model_dir, train_file, model_dir, log_dir, checkpoint_dir)))
    adapter_config, config = validate_run(variant, paths.train_file, adapter, training)
    if config.num_processes > 1 and not launch.launched_by_torchrun():
        return relaunch(variant, paths, adapter, training, model_name, config.num_processes)
    # Here, not before relaunching: a process that only starts the others needs no model code
    # (importing it and building the base model's skeleton takes seconds).
    check_target_modules(paths.base_model, adapter_config.target_modules)
    import torch

    from sdoc_model.train import distributed
    from sdoc_model.train.trainer import Trainer

    if threads:
        torch.set_num_threads(threads)

    keep_freed_memory()  # a step reallocates the same large buffers: no page faults each time
    # A crash in native code (an abort in a collective, heap corruption) then leaves each
    # thread's Python stack and glibc's own message in the job's log instead of nothing.
    if not faulthandler.is_enabled():
        faulthandler.enable()
    os.environ.setdefault("LIBC_FATAL_STDERR_", "1")
    processes = distributed.start(config.num_processes)
    try:
        trainer = Trainer(variant, paths, adapter_config, config, model_name or variant, processes)
        return trainer.fit()
    finally:
        distributed.stop(processes)


def relaunch(
    variant, paths: RunPaths, adapter: dict, training: dict, model_name, num_processes: int
) -> dict:
    """Run the CLI under torchrun with the same settings, written to log_dir/run_config.yaml."""
    config_file = paths.log_dir / "run_config.yaml"
    write_text(
        config_file, yaml.safe_dump({"adapter": adapter, "training": training}, allow_unicode=True)
    )
    args = [
        "--variant", variant, "--base-model", str(paths.base_model),
        "--train-file", str(paths.train_file), "--model-dir", str(paths.model_dir),
        "--log-dir", str(paths.log_dir), "--checkpoint-dir", str(paths.checkpoint_dir),
        "--config", str(config_file),
    ]  # fmt: skip
    if model_name:
        args += ["--model-name", model_name]
    launch.relaunch_with_torchrun(num_processes, args)
    return json.loads((paths.log_dir / "summary.json").read_text())
