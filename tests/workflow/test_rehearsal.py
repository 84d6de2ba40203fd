"""The paper rehearsal: config/rehearsal.yaml is the paper's graph at toy scale, and it runs."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from transformers import AutoConfig

from sdoc_model.profile import model_specs
from sdoc_model.report.plan import ReportPlan
from tests.workflow.test_workflow import SNAKEMAKE, dry_run, planned

REPO = Path(__file__).resolve().parents[2]
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
REHEARSAL = yaml.safe_load((REPO / "config" / "rehearsal.yaml").read_text())
# The only settings the rehearsal may change: how big things are, and which models stand in.
SCALE_KEYS = {
    "profile",
    "base_model",
    "data.train.0.max_rows",
    "data.train.1.max_rows",
    "data.synthetic",
    "training.max_steps",
    "training.batch_size",
    "training.grad_accum",
    "training.warmup_steps",
    "training.max_length",
    "training.save_every",
    "training.num_processes",
    "external.huatuogpt2_7b",
    "external.apollo_7b",
    "evaluation.limit",
    "evaluation.batch_size",
    "evaluation.routing_questions",
}


def flat(config, prefix: str = "") -> dict:
    """Dotted key -> value, down to the leaves (list items by position)."""
    if isinstance(config, dict):
        items = config.items()
    elif isinstance(config, list):
        items = enumerate(config)
    else:
        return {prefix: config}
    return {
        key: value
        for name, item in items
        for key, value in flat(item, f"{prefix}.{name}" if prefix else str(name)).items()
    }


def scale_key(key: str) -> str | None:
    return next((s for s in SCALE_KEYS if key == s or key.startswith(f"{s}.")), None)


def test_rehearsal_differs_from_the_paper_only_in_scale_settings():
    paper, rehearsal = flat(PAPER), flat(REHEARSAL)
    differing = {
        key for key in paper.keys() | rehearsal.keys() if paper.get(key) != rehearsal.get(key)
    }
    assert {key for key in differing if scale_key(key) is None} == set()
    assert rehearsal["training.num_processes"] == 2 and rehearsal["data.synthetic"] is True
    # The stand-ins keep what the graph and the evaluation depend on.
    for name, entry in PAPER["external"].items():
        stand_in = REHEARSAL["external"][name]
        assert stand_in["kind"] == "tiny"
        for key in ("trust_remote_code", "chat_template", "environment"):
            assert stand_in.get(key, False) == entry.get(key, False)


def test_rehearsal_plans_every_job_the_paper_plans():
    def jobs(config_name: str) -> dict[str, list[str]]:
        run = dry_run(REPO / "config" / config_name)
        assert run.returncode == 0, run.stderr + run.stdout
        rules = ["download", "normalise", "prepare_external", "train", "evaluate", "routing"]
        return {rule: sorted(planned(run.stdout, rule)) for rule in rules}

    assert jobs("rehearsal.yaml") == jobs("paper.yaml")
    assert model_specs(REHEARSAL).keys() == model_specs(PAPER).keys()


def test_rehearsal_executes_the_paper_graph(tmp_path, mirror):
    """Every job of the paper's graph, executed at toy scale, offline: two training processes
    through torchrun, the official-format readers (made-up files where the mirror has none),
    5-shot CMMLU-Med, and an external model that runs its own modeling code."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    run = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
         "--configfile", str(tmp_path / "config" / "rehearsal.yaml")],
        capture_output=True, text=True,
        env={**os.environ, "SDOC_MIRROR": str(mirror), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-5000:]
    results = tmp_path / "results" / "rehearsal"
    plan = ReportPlan.from_config(REHEARSAL, results)
    for path in [*plan.outputs(), *plan.result_inputs()]:
        assert path.is_file(), path
    summary = json.loads((results / "train" / "sparsedoctor-seed2" / "summary.json").read_text())
    assert summary["num_processes"] == 2
    remote = tmp_path / "resources" / "rehearsal" / "external" / "huatuogpt2_7b"
    assert (remote / "modeling_tiny_remote.py").is_file()
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoConfig.from_pretrained(remote)  # it needs its own code, which the evaluation ran
    result = json.loads((results / "eval" / "huatuogpt2_7b" / "cmmlu_med.json").read_text())
    assert "trust_remote_code=True" in result["config"]["model_args"]
    assert set(result["n-shot"].values()) == {5}
    report = (results / "REPORT.md").read_text()
    assert "**A rehearsal.**" in report and "tiny stand-in, its own modeling code" in report
    # Made-up files stay in the rehearsal's own raw folder; the CMB-Exam questions follow the
    # real answer key, every one of them.
    assert not (tmp_path / "resources" / "raw").exists()
    normalised = tmp_path / "resources" / "rehearsal" / "data" / "normalised"
    assert len((normalised / "cmb_exam_test.jsonl").read_text().splitlines()) == 11_200
