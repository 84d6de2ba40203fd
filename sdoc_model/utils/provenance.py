"""Where results came from: code version, software, host, config and data checksums.

Standard library only, so that training runs record it too without loading the report stack.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "transformers", "peft", "lm_eval", "datasets", "snakemake", "seaborn")


def gather_provenance(config: dict, checksums: dict[str, str], repo: Path = REPO_ROOT) -> dict:
    """Everything needed to say how results/P was produced.

    `checksums` maps each data file to its sha256, as the caller (the data step) computed them.
    """
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_state(repo),
        **software(),
        "host": host_description(),
        "config": config,
        "data_checksums": dict(sorted(checksums.items())),
    }


def write_provenance(path: Path, provenance: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def software() -> dict:
    """The Python version and the versions of the packages results depend on."""
    return {
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in PACKAGES},
    }


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# The workflow's outputs: running it rewrites committed results, which is no change of the code.
OUTPUTS = "results"


def git_state(repo: Path) -> dict:
    """Commit, and whether tracked files outside results/ differ from it (untracked files and
    the workflow's own outputs don't count)."""
    try:
        commit = _git(repo, "rev-parse", "HEAD")
        changes = _git(
            repo, "status", "--porcelain", "--untracked-files=no", "--", ".",
            f":(exclude){OUTPUTS}",
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(changes)}


def short_commit(git: dict) -> str:
    """A git_state as people read it: the commit's first 7 hex digits, "+dirty" with uncommitted
    changes, "unknown" outside a checkout."""
    if not git.get("commit"):
        return "unknown"
    return git["commit"][:7] + ("+dirty" if git.get("dirty") else "")


def runs_text(runs: dict[str, list[str]]) -> str:
    """Where the runs a report holds were made ("+dirty": with uncommitted changes), e.g.
    "models trained at commit `a`; evaluated at commits `a` and `b`"."""
    parts = [("models trained", runs["training"]), ("evaluated", runs["evaluation"])]
    return "; ".join(
        f"{what} at commit{'s' if len(commits) > 1 else ''} "
        + " and ".join(f"`{commit}`" for commit in commits)
        for what, commits in parts
        if commits
    )


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def host_description() -> dict:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": _gpus(),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _gpus() -> list[str]:
    """NVIDIA GPUs as "name, memory" (asking nvidia-smi avoids importing torch)."""
    if shutil.which("nvidia-smi") is None:
        return []
    query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
    try:
        output = subprocess.run(
            query, capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in output.splitlines() if line.strip()]


def load_checksums(path: Path) -> dict[str, str]:
    """A JSON object {data file: sha256}, as passed with --checksums."""
    checksums = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(checksums, dict) or not all(isinstance(v, str) for v in checksums.values()):
        raise ValueError(f"{path}: expected a JSON object mapping each data file to its sha256")
    return checksums
