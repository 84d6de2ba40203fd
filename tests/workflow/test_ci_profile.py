"""The whole `ci` profile, end to end from the benchmark mirror, killed mid-training and rerun
with `sdoc run` as a user would; then Snakemake's bookkeeping: a second run does nothing, and
deleting one evaluation reruns only what depends on it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sdoc_model.profile import model_specs
from sdoc_model.report.plan import ReportPlan
from sdoc_model.train.trainer import KILL_AFTER_STEP_ENV
from sdoc_model.utils.provenance import git_state, short_commit

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
RETIRED_RULE = "retired_rule"


def command_line(workdir: Path, *args: str, cores: bool = True) -> tuple[list[str], dict]:
    arguments = [
        "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--configfile", str(workdir / "config" / "ci.yaml"), *args,
    ]  # fmt: skip
    if cores:
        arguments += ["--cores", "2"]
    env = {**os.environ, "SDOC_MIRROR": str(workdir / "mirror"), "HF_HUB_OFFLINE": "1"}
    return arguments, env


def snakemake(workdir: Path, *args: str, cores: bool = True) -> subprocess.CompletedProcess:
    arguments, env = command_line(workdir, *args, cores=cores)
    return subprocess.run([str(SNAKEMAKE), *arguments], capture_output=True, text=True, env=env)


def kill_after_a_checkpoint(workdir: Path) -> None:
    """Run the workflow in a process group of its own, which the first training job to save
    a checkpoint (at step 6 of 12) kills whole, with SIGKILL."""
    arguments, env = command_line(workdir)
    killed = subprocess.run(
        [sys.executable, "-m", "sdoc_model.cli", "run", *arguments], capture_output=True,
        env={**env, KILL_AFTER_STEP_ENV: "6"}, start_new_session=True,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]


def planned_rules(dry_run_output: str) -> list[str]:
    return [
        line.split()[-1].rstrip(":")
        for line in dry_run_output.splitlines()
        if line.startswith(("rule ", "localrule "))
    ]


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, mirror):
    """The ci profile killed while training, then rerun with `sdoc run`: (workdir, the model
    that was training, what the rerun printed)."""
    workdir = tmp_path_factory.mktemp("ci_profile")
    shutil.copytree(REPO / "config", workdir / "config")
    (workdir / "mirror").symlink_to(mirror)
    # Left by a rule this workflow no longer has: not one of this run's jobs.
    retired = workdir / "results" / "ci" / "benchmarks" / RETIRED_RULE / "job.tsv"
    retired.parent.mkdir(parents=True)
    retired.write_text("s\th:m:s\tmax_rss\n999.0\t0:16:39\t1.0\n")
    kill_after_a_checkpoint(workdir)
    [checkpoint] = workdir.glob("resources/ci/checkpoints/*/step-000006")
    model = checkpoint.parent.name
    assert list((workdir / ".snakemake" / "locks").iterdir()), "the killed run left no lock"
    arguments, env = command_line(workdir)
    rerun = subprocess.run(
        [sys.executable, "-m", "sdoc_model.cli", "run", *arguments], capture_output=True,
        text=True, env=env,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    return workdir, model, rerun.stderr


@pytest.fixture(scope="module")
def ci_run(interrupted_run):
    return interrupted_run[0]


def test_rerun_after_a_kill_needs_no_unlock_and_resumes_training(interrupted_run):
    workdir, model, stderr = interrupted_run
    assert "removing the lock of an interrupted Snakemake run" in stderr
    log = (workdir / "results" / "ci" / "logs" / "train" / f"{model}.log").read_text()
    assert f"resuming from resources/ci/checkpoints/{model}/step-000006" in log


def test_the_interrupted_model_trains_and_scores_as_an_uninterrupted_one(interrupted_run):
    workdir, model, _ = interrupted_run
    results = workdir / "results" / "ci"
    resumed = {
        path.relative_to(results): path.read_bytes()
        for path in [*results.glob(f"models/{model}/*.safetensors"), *results.glob("tables/*.csv")]
        if path.name != "efficiency.csv"  # timings
    }
    log = results / "logs" / "train" / f"{model}.log"
    logged = len(log.read_text())
    for trained in (results / "models" / model, results / "eval" / model):
        shutil.rmtree(trained)
    shutil.rmtree(workdir / "resources" / "ci" / "checkpoints" / model)
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-5000:]
    assert "resuming" not in log.read_text()[logged:]  # this time from scratch
    for path, content in resumed.items():
        assert (results / path).read_bytes() == content, path


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
    spread = main.filter(like="_seed_sd")
    assert not main.select_dtypes("number").drop(columns=spread.columns).isna().any().any()
    # The spread between seeds exactly where a model has two runs (ci: seeds [0, 1]).
    assert (spread.notna().all(axis=1) == (main.seeds == 2)).all()
    assert set(main.seeds) == {1, 2}
    leakage = ci_run / "results" / "ci" / "data" / "leakage.md"
    assert "evaluation set" in leakage.read_text()


def test_the_compute_section_sums_this_runs_jobs_only(ci_run):
    benchmarks = ci_run / "results" / "ci" / "benchmarks"
    jobs = [
        path
        for path in benchmarks.rglob("*.tsv")
        if path.parent.name != RETIRED_RULE and path.name != "report.tsv"  # its own: after
    ]
    assert len(jobs) > 20
    text = (ci_run / "results" / "ci" / "REPORT.md").read_text()
    assert f"Total wall time of the {len(jobs)} benchmarked jobs" in text
    assert RETIRED_RULE not in text


def test_runs_and_report_name_this_checkouts_commit(ci_run):
    """Though the workflow runs in a folder outside the checkout (-d), as lm-eval's own
    git_hash does not see."""
    results = ci_run / "results" / "ci"
    commit = short_commit(git_state(REPO))
    provenance = json.loads((results / "provenance.json").read_text())
    assert provenance["runs"] == {"training": [commit], "evaluation": [commit]}
    assert (
        f"models trained at commit `{commit}`; evaluated at commit `{commit}`."
        in (results / "REPORT.md").read_text()
    )


def test_each_seed_trains_its_own_run(ci_run):
    results = ci_run / "results" / "ci"
    summaries = [json.loads((results / "train" / run / "summary.json").read_text())
                 for run in ("lora", "lora-seed1")]  # fmt: skip
    assert [summary["config"]["training"]["seed"] for summary in summaries] == [0, 1]
    first, second = (
        (results / "models" / run / "adapter_model.safetensors").read_bytes()
        for run in ("lora", "lora-seed1")
    )
    assert first != second


def test_second_run_has_nothing_to_do(ci_run):
    run = snakemake(ci_run, "-n")
    assert run.returncode == 0
    assert planned_rules(run.stdout) == [], run.stdout


def test_deleting_one_result_reruns_only_that_models_evaluation_and_the_report(ci_run):
    (ci_run / "results" / "ci" / "eval" / "lora" / "cmb_xmed.json").unlink()
    run = snakemake(ci_run, "-n")
    assert run.returncode == 0
    assert sorted(planned_rules(run.stdout)) == ["all", "evaluate", "report"], run.stdout
    assert "wildcards: model=lora" in run.stdout


def test_snakemake_report_holds_every_table_and_figure(ci_run):
    report = ci_run / "results" / "ci" / "report.zip"
    run = snakemake(ci_run, "--report", str(report), cores=False)  # as a user types it
    assert run.returncode == 0, run.stderr[-3000:]
    config = yaml.safe_load((ci_run / "config" / "ci.yaml").read_text())
    plan = ReportPlan.from_config(config, ci_run / "results" / "ci")
    with zipfile.ZipFile(report) as archive:
        names = archive.namelist()
    shown = [f"{name}.png" for name in plan.figure_names()]
    shown += [f"{name}.csv" for name in plan.table_names()] + ["REPORT.md", "provenance.json"]
    missing = [file for file in shown if not any(n.endswith(f"/{file}") for n in names)]
    assert not missing, names
