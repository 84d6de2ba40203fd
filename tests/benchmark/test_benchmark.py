"""The speed benchmark's smoke run: every section runs and prints its figures."""

import mmap
import re
import shutil

from sdoc_model.benchmark.__main__ import main
from sdoc_model.benchmark.measure import MiB, warm_up
from sdoc_model.utils.allocator import keep_freed_memory
from tests.conftest import REPO
from tests.factories import write_data_dir


def test_quick_run_prints_every_section(
    capfd, single_thread, tiny_model_dir, tmp_path, monkeypatch
):
    data = write_data_dir(tmp_path / "data")
    shutil.copyfile(data / "normalised" / "cmexam_xmed.jsonl", data / "train.jsonl")
    monkeypatch.setenv("SDOC_DATA_DIR", str(data))  # the evaluation section sets it: restored
    main([
        "--quick", "--dispatch-sweep", "--config", str(REPO / "config" / "ci.yaml"),
        "--base-model", str(tiny_model_dir), "--data", str(data),
    ])  # fmt: skip
    out = capfd.readouterr().out  # the training steps print from a child process
    sections = (
        "layer forward+backward", "dispatch sweep", "training step", "memory queue",
        "evaluation throughput", "training job",
    )  # fmt: skip
    for title in sections:
        assert f"== {title}" in out, out
    assert "masked loop" in out and "sparsedoctor/lora" in out and "of the FLOP bound" in out
    assert re.search(r"their matmul FLOPs .* [\d.]+x;", out) and "without its dropout" in out
    assert re.search(r"timed after \d+ warm-up rounds", out)
    assert "constant: True" in out
    # Every task of the ci profile was scored, and the plain forward saw the same inputs.
    for task in ("cmb_xmed", "cmexam_xmed", "cmmlu_med"):
        assert re.search(rf"^{task}\s+\d+\s+\d+\s+\d+", out, re.MULTILINE), out
    assert re.search(r"task runs at [\d.]+ of the plain forward", out)
    assert re.search(r"job/steps [\d.]+ \(target", out)


def test_freed_memory_is_kept_on_glibc():
    """This project's machines run glibc: the allocator setting must take (the benchmark and
    the jobs rely on it for their CPU speed)."""
    assert keep_freed_memory()


def touch_new_memory(size: int) -> mmap.mmap:
    """A fresh anonymous mapping with every page written: page faults whatever the heap holds."""
    memory = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        memory[offset] = 1
    return memory


def test_warm_up_runs_until_no_case_page_faults():
    kept = []

    def growing():  # faults in 80 MiB of new memory in each of its first two runs
        if len(kept) < 2:
            kept.append(touch_new_memory(80 * MiB))

    cases = {"growing": growing, "steady": lambda: None}
    assert warm_up(cases, max_rounds=5, fault_limit=64 * MiB) == 3
    always = []
    assert warm_up({"always": lambda: always.append(touch_new_memory(80 * MiB))}, 2, 64 * MiB) == -1
