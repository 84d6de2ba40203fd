"""The whole `ci` profile, end to end from the benchmark mirror, then Snakemake's bookkeeping:
a second run does nothing, and deleting one evaluation reruns only what depends on it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sdoc_model.profile import model_specs
from sdoc_model.report.plan import ReportPlan

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config" / "ci.yaml"),
        "--cores",
        "2",
        *args,
    ]
    env = {**os.environ, "SDOC_MIRROR": str(workdir / "mirror"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env)


def planned_rules(dry_run_output: str) -> list[str]:
    return [
        line.split()[-1].rstrip(":")
        for line in dry_run_output.splitlines()
        if line.startswith(("rule ", "localrule "))
    ]


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory, mirror):
    workdir = tmp_path_factory.mktemp("ci_profile")
    shutil.copytree(REPO / "config", workdir / "config")
    (workdir / "mirror").symlink_to(mirror)
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir


def test_ci_profile_writes_every_table_and_figure(ci_run):
    config = yaml.safe_load((ci_run / "config" / "ci.yaml").read_text())
    plan = ReportPlan.from_config(config, ci_run / "results" / "ci")
    for path in plan.outputs():
        assert path.is_file() and path.stat().st_size > 0, path
    main = pd.read_csv(ci_run / "results" / "ci" / "tables" / "main.csv")
    rows = {
        name
        for name, spec in model_specs(config).items()
        if spec.kind != "trained" or name in config["variants"]
    }
    assert set(main.iloc[:, 0]) == rows
    assert not main.select_dtypes("number").isna().any().any()
    leakage = ci_run / "results" / "ci" / "data" / "leakage.md"
    assert "evaluation set" in leakage.read_text()


def test_second_run_has_nothing_to_do(ci_run):
    run = snakemake(ci_run, "-n")
    assert run.returncode == 0
    assert planned_rules(run.stdout) == [], run.stdout


def test_deleting_one_evaluation_reruns_only_what_depends_on_it(ci_run):
    (ci_run / "results" / "ci" / "eval" / "lora" / "cmb.json").unlink()
    run = snakemake(ci_run, "-n")
    assert run.returncode == 0
    assert sorted(planned_rules(run.stdout)) == ["all", "evaluate", "report"], run.stdout
    assert "wildcards: model=lora, task=cmb" in run.stdout
