"""Resumable checkpoints: `checkpoint_dir/step-000010/`, written atomically, the newest kept.

A checkpoint folder holds

    adapter.safetensors   the trainable parameters
    trainer.safetensors   optimizer and scheduler state
    rank{r}.safetensors   each process's own state: random number generators (dropout, router
                          jitter) and expert memory queues (each process fills its own)
    state.json            step, data position, tokens and time so far, the run's settings
    metrics.jsonl         the metrics lines up to this step
    manifest.json         the size and sha256 of every other file

Safetensors and JSON only (sdoc_model.utils.tensor_files): nothing is pickled, so a checkpoint
copied from elsewhere can fail to load but cannot run code. It is built under a hidden
temporary name and renamed into place once every file is on disk, so a folder named `step-*` is
complete whenever the process is killed; the manifest catches what happens to it later (a
truncated copy, a flipped bit), and resume then falls back to the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sdoc_model.data.download import sha256_file
from sdoc_model.train.distributed import Processes, barrier
from sdoc_model.utils.strict import copy_tensors
from sdoc_model.utils.tensor_files import (
    CorruptFileError,
    load_state,
    load_tensors,
    save_state,
    save_tensors,
)

CHECKPOINT_NAME = re.compile(r"^step-(\d{6,})$")
MANIFEST = "manifest.json"
NOT_CHECKED_ON_RESUME = ("save_every", "keep_last")  # settings a resumed run may change


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def checkpoints_newest_first(checkpoint_dir: Path) -> list[Path]:
    steps = {
        int(match.group(1)): path
        for path in checkpoint_dir.glob("step-*")
        if (match := CHECKPOINT_NAME.match(path.name)) and path.is_dir()
    }
    return [steps[step] for step in sorted(steps, reverse=True)]


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    checkpoint_dir: Path,
    step: int,
    adapter_state: dict[str, torch.Tensor],
    trainer_state: dict,
    process_state: dict,
    run_state: dict,
    metrics_file: Path,
    keep_last: int,
    processes: Processes,
) -> Path:
    """Every process writes its own state, the main one the rest and the manifest; then the
    folder is renamed into place and checkpoints beyond the newest `keep_last` are deleted."""
    final = checkpoint_dir / checkpoint_name(step)
    tmp = checkpoint_dir / f".{final.name}.tmp"
    if processes.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(processes)
    save_state({**process_state, "rng": rng_state()}, tmp / f"rank{processes.rank}.safetensors")
    barrier(processes)
    if processes.is_main:
        save_tensors(adapter_state, tmp / "adapter.safetensors")
        save_state(trainer_state, tmp / "trainer.safetensors")
        (tmp / "state.json").write_text(json.dumps(run_state, indent=2) + "\n")
        shutil.copyfile(metrics_file, tmp / "metrics.jsonl")
        write_manifest(tmp)
        _fsync_folder(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_path(checkpoint_dir)
        prune_checkpoints(checkpoint_dir, keep_last)
    return final


def load_checkpoint(path: Path, processes: Processes) -> tuple[dict, dict, dict, dict]:
    """(adapter, trainer, process and run state) of a checkpoint, on the CPU; restores this
    process's RNGs. CorruptFileError when a file is missing, truncated or changed."""
    verify_manifest(path)
    run_state = json.loads((path / "state.json").read_text())
    if run_state["world_size"] != processes.world_size:
        raise ValueError(
            f"checkpoint {path} was written by {run_state['world_size']} process(es); resume it "
            f"with training.num_processes = {run_state['world_size']}, "
            f"or delete {path.parent} to start over"
        )
    adapter_state, _ = load_tensors(path / "adapter.safetensors")
    # The optimizer moves its state to each parameter's device itself ("step" stays put).
    trainer_state = load_state(path / "trainer.safetensors")
    process_state = load_state(path / f"rank{processes.rank}.safetensors")
    set_rng_state(process_state.pop("rng"))
    return adapter_state, trainer_state, process_state, run_state


def write_manifest(folder: Path) -> None:
    files = {
        path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST
    }
    (folder / MANIFEST).write_text(json.dumps(files, indent=2) + "\n")


def verify_manifest(folder: Path) -> None:
    """Every file the manifest lists is there with its size and sha256, else CorruptFileError.
    Every process checks every file, so all reach the same verdict."""
    try:
        files = json.loads((folder / MANIFEST).read_text())
        expected_sizes = {name: int(entry["bytes"]) for name, entry in files.items()}
    except FileNotFoundError:
        raise CorruptFileError(f"{folder}: no {MANIFEST} (written by an older version?)") from None
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise CorruptFileError(f"{folder / MANIFEST}: not a valid manifest ({err!r})") from None
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise CorruptFileError(f"{path}: missing (listed in {MANIFEST})")
        size, written = path.stat().st_size, expected_sizes[name]
        if size != written:
            raise CorruptFileError(
                f"{path}: {size:,} bytes, {written:,} were written: "
                f"{'truncated' if size < written else 'changed'}"
            )
        if sha256_file(path) != expected.get("sha256"):
            raise CorruptFileError(
                f"{path}: its sha256 differs from {MANIFEST}: changed after it was written"
            )


def remove_partial_checkpoints(checkpoint_dir: Path) -> None:
    """Temporary folders of saves that a kill interrupted."""
    for path in checkpoint_dir.glob(".step-*.tmp"):
        shutil.rmtree(path, ignore_errors=True)


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint out of the way (`step-N.corrupt`), for inspection; only the
    newest one set aside is kept, so damaged copies cannot fill the disk."""
    aside = path.with_name(f"{path.name}.corrupt")
    for older in path.parent.glob("step-*.corrupt"):
        shutil.rmtree(older)
    os.replace(path, aside)
    return aside


def prune_checkpoints(checkpoint_dir: Path, keep_last: int) -> None:
    steps = sorted(
        (int(match.group(1)), path)
        for path in checkpoint_dir.glob("step-*")
        if (match := CHECKPOINT_NAME.match(path.name))
    )
    for _, path in steps[:-keep_last]:
        shutil.rmtree(path)


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        _fsync_path(path)
    _fsync_path(folder)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    copy_tensors(trainable_state(model), state, str(source))


def check_same_settings(saved: dict, current: dict, path: Path) -> None:
    """A checkpoint only resumes the run that wrote it: other settings would silently mix."""
    current = json.loads(json.dumps(current))
    differ = []
    if saved["variant"] != current["variant"]:
        differ.append(f"variant ({saved['variant']} -> {current['variant']})")
    for section in ("adapter", "training"):
        for key in sorted(saved[section].keys() | current[section].keys()):
            old, new = saved[section].get(key), current[section].get(key)
            if old != new and key not in NOT_CHECKED_ON_RESUME:
                differ.append(f"{section}.{key} ({old!r} -> {new!r})")
    if differ:
        raise ValueError(
            f"checkpoint {path} was written with other settings: {', '.join(differ)}. "
            f"Restore them, or delete {path.parent} to train from scratch."
        )
