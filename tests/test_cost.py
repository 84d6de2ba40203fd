"""`sdoc cost`: every job of the paper profile with its GPU-hours, from the GPU benchmark's
figures or a stated assumption, and a warning when a configured Slurm runtime is too short."""

import json
import re

import pytest
import yaml

from sdoc_model.cli import main
from sdoc_model.profile import model_specs
from tests.conftest import REPO

PAPER = REPO / "config" / "paper.yaml"


def jobs(out: str) -> list[tuple[str, str, int, float]]:
    rows = re.findall(
        r"^(train|evaluate|routing)\s+(\S+)\s+([\d,]+)\s+\d+\s+([\d.]+)", out, re.MULTILINE
    )
    return [
        (job, model, int(tokens.replace(",", "")), float(hours))
        for job, model, tokens, hours in rows
    ]


def test_every_job_of_the_paper_profile_is_costed(capsys):
    main(["cost", "--config", str(PAPER), "--mfu", "0.5", "--peak-tflops", "1000"])
    out = capsys.readouterr().out
    specs = model_specs(yaml.safe_load(PAPER.read_text()))
    costed = jobs(out)
    assert sorted(m for j, m, _, _ in costed if j == "train") == sorted(
        name for name, spec in specs.items() if spec.trained
    )
    assert sorted(m for j, m, _, _ in costed if j == "evaluate") == sorted(specs)
    # The routing probe: one per mixture-of-experts model; 100 questions per discipline of each
    # of three test sets, 30 disciplines assumed (capped at CMMLU-Med's 1,333 questions).
    assert sorted(m for j, m, _, _ in costed if j == "routing") == sorted(
        name for name, spec in specs.items() if spec.trained and spec.variant != "lora"
    )
    _, _, tokens, _ = next(row for row in costed if row[:2] == ("routing", "sparsedoctor"))
    assert tokens == 3000 * 197 + 3000 * 207 + 1333 * 172
    # Training: 4 x 7.6e9 FLOP per token at 50% of 1000 TFLOP/s.
    _, _, tokens, hours = next(row for row in costed if row[:2] == ("train", "sparsedoctor"))
    assert hours == pytest.approx(tokens * 4 * 7.6e9 / 0.5e15 / 3600, abs=0.05)
    assert "assumed: 50% of 1000 bf16 TFLOP/s" in out


def test_measured_figures_replace_the_assumption_and_short_runtimes_are_flagged(capsys, tmp_path):
    figures = tmp_path / "gpu.json"
    figures.write_text(json.dumps({"sparsedoctor": {"tokens_per_s": 100.0},
                                   "eval_forward_tokens_per_s": 1000.0}))  # fmt: skip
    config = yaml.safe_load(PAPER.read_text())
    config["resources"]["train"]["runtime"] = 1
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(config))
    main(["cost", "--config", str(path), "--gpu-figures", str(figures)])
    out = capsys.readouterr().out
    _, _, tokens, hours = next(row for row in jobs(out) if row[:2] == ("train", "lora"))
    assert hours == pytest.approx(tokens / 100.0 / 3600, rel=1e-3)
    assert "measured by the GPU benchmark" in out
    assert re.search(r"^train: .*configured: 1 min \(too short\)", out, re.MULTILINE)
