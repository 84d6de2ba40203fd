"""How the benchmarks measure: interleaved best-of-N wall times, profiler peak memory, tables."""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable, Iterator

from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

MiB = 2**20


def best_times(
    cases: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Best wall time of each case over `repeats` interleaved rounds, after `warmup` rounds:
    drift on a shared machine hits every case alike, and the best round is the least disturbed."""
    times = {name: [] for name in cases}
    for round_index in range(warmup + repeats):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def warm_up(cases: dict[str, Callable[[], object]], max_rounds: int, fault_limit: int) -> int:
    """Run interleaved rounds of every case until a round in which none page-faults more than
    `fault_limit` bytes (its heap has reached its working set), at most `max_rounds`. Returns
    the rounds run, or -1 when the faults did not settle."""
    page = resource.getpagesize()
    for rounds in range(1, max_rounds + 1):
        worst = 0
        for run in cases.values():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            run()
            worst = max(worst, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        if worst * page <= fault_limit:
            return rounds
    return -1


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """The profiler's C++ side prints start/stop lines to fd 2; keep the tables readable."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_allocated_bytes(run: Callable[[], object]) -> int:
    """High-water mark of CPU tensor memory allocated by `run` beyond what already existed,
    counted by the torch profiler."""
    with (
        _stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        run()
    allocations = []
    pending = list(prof.profiler.kineto_results.experimental_event_tree())
    while pending:
        event = pending.pop()
        if event.tag == _EventType.Allocation:
            allocations.append((event.start_time_ns, event.extra_fields.alloc_size))
        pending.extend(event.children)
    live = peak = 0
    for _, size in sorted(allocations):
        live += size
        peak = max(peak, live)
    return peak


def print_table(title: str, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n== {title} ==")
    for row in [header, *rows]:
        cells = zip(row, widths, strict=True)
        print(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(cells)
            )
        )
