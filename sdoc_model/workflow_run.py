"""`sdoc run ARGS`: Snakemake with ARGS, after clearing the lock an interrupted run left.

Snakemake locks its working directory while it runs and removes the lock when it ends. A run
that is killed (Ctrl-C twice, the OOM killer, a lost SSH session) leaves the lock behind, and
every later run refuses with "Directory cannot be locked" until `snakemake --unlock`. The lock
is stale when no process of a Snakemake run works in that directory, which this machine can
tell (Linux /proc): then `sdoc run` unlocks and goes on, and the jobs the killed run left
half done rerun (`--rerun-incomplete`; training resumes from its newest checkpoint). While a
run is still alive it refuses instead, naming its processes. Jobs on other machines (a
cluster executor's) are out of its sight, so with `--profile` or `--executor` it only says
how to unlock by hand once you know none runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PROC = Path("/proc")


class WorkflowRunningError(OSError):
    """Another Snakemake run is alive in the directory: its lock is not stale."""


# Arguments that may send jobs to other machines, whose processes /proc cannot show.
REMOTE_JOBS = ("--profile", "--executor", "-e")


def run(args: list[str]) -> None:
    """Clear a stale lock, then replace this process by Snakemake (signals reach it directly)."""
    workdir = working_directory(args)
    if any((workdir / ".snakemake" / "locks").glob("*.lock")):
        if any(arg.split("=")[0] in REMOTE_JOBS for arg in args):
            print(
                f"{workdir} is locked; its jobs may run on other machines, so the lock is kept. "
                "If no job of the workflow runs anywhere, run `snakemake --unlock` once.",
                file=sys.stderr,
            )
        else:
            clear_stale_lock(workdir, args)
    if not {"--rerun-incomplete", "--ri"} & set(args):
        args = [*args, "--rerun-incomplete"]
    os.execv(sys.executable, [*SNAKEMAKE, *args])


def clear_stale_lock(workdir: Path, args: list[str]) -> None:
    running = run_processes(workdir)
    if running is None:
        print(
            f"{workdir} is locked and this system cannot tell whether Snakemake runs there; if "
            "none does, run `snakemake --unlock` once",
            file=sys.stderr,
        )
        return
    if running:
        listed = ", ".join(f"{pid} ({command[:60]})" for pid, command in running.items())
        raise WorkflowRunningError(
            f"a Snakemake run is still working in {workdir}: process(es) {listed}. "
            "Wait for it to end, or stop it, then rerun."
        )
    print(
        f"{workdir}: removing the lock of an interrupted Snakemake run (no Snakemake process "
        "works there); its unfinished jobs rerun",
        file=sys.stderr,
    )
    unlocked = subprocess.run([*SNAKEMAKE, *args, "--unlock"], capture_output=True, text=True)
    if unlocked.returncode:
        raise OSError(f"snakemake --unlock failed in {workdir}: {unlocked.stderr.strip()[-500:]}")


def working_directory(args: list[str]) -> Path:
    """Snakemake's `-d/--directory`, else the current directory."""
    for index, arg in enumerate(args):
        if arg in ("-d", "--directory") and index + 1 < len(args):
            return Path(args[index + 1]).resolve()
        if arg.startswith("--directory="):
            return Path(arg.partition("=")[2]).resolve()
    return Path.cwd().resolve()


def run_processes(workdir: Path) -> dict[int, str] | None:
    """Processes of a Snakemake run in `workdir` on this machine, by PID: Snakemake itself, the
    job scripts it started (their command lines name `.snakemake/scripts/`) and training
    processes they launched, working in `workdir` or below it. None where /proc is not there
    to ask."""
    if not (PROC / "self" / "cmdline").exists():
        return None
    own = ancestors(os.getpid())
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # ended meanwhile, or another user's
            continue
        if (cwd == workdir or workdir in cwd.parents) and any(map(is_workflow_arg, argv)):
            found[int(entry.name)] = " ".join(argv).strip()
    return found


def is_workflow_arg(arg: str) -> bool:
    """Snakemake (`snakemake`, `-m snakemake`), a job script, or a training launcher."""
    return (
        Path(arg).name == "snakemake"
        or "/.snakemake/scripts/" in arg
        or arg in ("torch.distributed.run", "sdoc_model.train")
    )


def ancestors(pid: int) -> set[int]:
    """`pid` and its parents: the shell, make or pytest that started this command."""
    chain = set()
    while pid > 0 and pid not in chain:
        chain.add(pid)
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])  # the field after the state letter
    return chain
