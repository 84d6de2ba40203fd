"""The Snakemake workflow's DAG for every profile, and config validation before any job runs."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdoc_model.profile import model_specs

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def dry_run(configfile: Path, workdir: Path = REPO) -> subprocess.CompletedProcess:
    """Every job of the profile, whatever outputs already exist (the demo's are committed)."""
    return subprocess.run(
        [str(SNAKEMAKE), "-n", "--forceall", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--configfile", str(configfile)],
        capture_output=True, text=True,
    )  # fmt: skip


def planned(output: str, rule: str) -> list[str]:
    """The wildcards line of every job of ``rule`` in a dry run's listing."""
    jobs = re.split(r"\n(?=rule \w+:)", output)
    return [
        re.search(r"wildcards: (.*)", job).group(1)
        for job in jobs
        if job.startswith(f"rule {rule}:")
    ]


@pytest.mark.parametrize("profile", ["ci", "config", "paper"])
def test_every_profile_plans_a_training_and_an_evaluation_job_per_model(profile):
    config = yaml.safe_load((REPO / "config" / f"{profile}.yaml").read_text())
    run = dry_run(REPO / "config" / f"{profile}.yaml")
    assert run.returncode == 0, run.stderr + run.stdout
    specs = model_specs(config)
    trained = {f"model={name}" for name, spec in specs.items() if spec.trained}
    assert set(planned(run.stdout, "train")) == trained
    # The routing probe: one job per mixture-of-experts model, sweep points included.
    moe = {name for name, spec in specs.items() if spec.trained and spec.variant != "lora"}
    assert set(planned(run.stdout, "routing")) == {f"model={name}" for name in moe}
    evaluations = planned(run.stdout, "evaluate")
    assert sorted(evaluations) == sorted(f"model={model}" for model in specs)
    for model in specs:  # each writes a result and per-question records per task
        for task in config["evaluation"]["tasks"]:
            assert f"results/{config['profile']}/eval/{model}/{task}.questions.jsonl" in run.stdout


def test_paper_dry_run_trains_every_variant_with_three_seeds_and_sweeps_with_the_first():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    run = dry_run(REPO / "config" / "paper.yaml")
    assert run.returncode == 0, run.stderr + run.stdout
    trained = set(planned(run.stdout, "train"))
    assert config["seeds"] == [0, 1, 2] and config["sweep_seeds"] == 1
    for variant in ("lora", "lora_moe_dense", "lora_moe", "sparsedoctor_noqueue", "sparsedoctor"):
        assert {f"model={variant}", f"model={variant}-seed1", f"model={variant}-seed2"} <= trained
    assert "model=sparsedoctor-top_k-1" in trained
    assert not any(job.startswith("model=sparsedoctor-top_k-1-seed") for job in trained)
    assert len(trained) == 5 * 3 + sum(
        value != config["adapter"][knob] for knob, values in config["sweeps"].items()
        for value in values
    )  # fmt: skip


def test_more_sweep_seeds_than_seeds_fails_naming_the_key(tmp_path):
    config = yaml.safe_load((REPO / "config" / "ci.yaml").read_text()) | {"sweep_seeds": 3}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    shutil.copytree(REPO / "config", tmp_path / "config")
    run = dry_run(bad, workdir=tmp_path)
    assert run.returncode != 0
    assert "config key sweep_seeds: 3, but seeds has 2" in run.stdout + run.stderr


def test_paper_profile_covers_every_variant_sweep_point_and_external_model():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    specs = model_specs(config)
    for knob, values in config["sweeps"].items():
        for value in values:
            default = value == config["adapter"][knob]
            assert ("sparsedoctor" if default else f"sparsedoctor-{knob}-{value}") in specs
    assert {"base", "lora", "lora_moe_dense", "lora_moe", "sparsedoctor_noqueue"} <= set(specs)
    assert {name for name, spec in specs.items() if spec.kind == "external"} == set(
        config["external"]
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("adapter", "top_k", 16, "config key adapter.top_k must be <= num_experts (4), got 16"),
        ("training", "lr", -1.0, "lr"),
        ("evaluation", "tasks", ["mmlu"], "tasks"),
        ("adapter", "rank", 0, "rank"),
        ("training", "shuffle_buffer", 3, "shuffle_buffer"),
        ("training", "num_processes", 3, "training.batch_size (4) must be a multiple of"),
        (
            "sweeps",
            "top_k",
            [1, 2, 8],
            "config key sweeps.top_k point 8 (model sparsedoctor-top_k-8): top_k must be <= "
            "num_experts (4), got 8",
        ),
        ("sweeps", "num_experts", [1, 4], "sweeps.num_experts point 1 (model sparsedoctor-"),
        (
            "adapter",
            "cl_labels",
            "discipline",
            "(model sparsedoctor_noqueue): cl_labels: discipline needs training data with "
            "disciplines; none of",
        ),
    ],
    ids=[
        "k-above-E", "negative-lr", "unknown-task", "zero-rank", "unknown-key",
        "batch-not-divisible", "sweep-k-above-E", "sweep-E-below-k", "unlabelled-cl-labels",
    ],
)  # fmt: skip
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, section, key, value, message):
    config = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    config[section][key] = value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    shutil.copytree(REPO / "config", tmp_path / "config")
    run = dry_run(bad, workdir=tmp_path)
    assert run.returncode != 0
    assert message in run.stdout + run.stderr
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


def plan_custom_external(tmp_path, entry: dict) -> subprocess.CompletedProcess:
    """Dry-run the ci profile with one external hub model, org/custom, whose lock file entry
    names an architecture transformers does not build; `entry` adds its other config keys."""
    shutil.copytree(REPO / "config", tmp_path / "config", dirs_exist_ok=True)
    lock = {"org/custom": {"ref": "main", "commit": "a" * 40, "architectures": ["CustomLM"]}}
    (tmp_path / "config" / "ci.lock.json").write_text(json.dumps(lock))
    config = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    config["external"] = {"custom": {"model_id": "org/custom", **entry}}
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(config))
    return dry_run(path, workdir=tmp_path)


def test_an_external_model_needing_remote_code_fails_the_dry_run_unless_it_opts_in(tmp_path):
    """The lock file records each hub model's architectures; one this transformers cannot
    build needs `trust_remote_code: true`, named before any job runs."""
    run = plan_custom_external(tmp_path, {})
    assert run.returncode != 0
    named = "config key external.custom (org/custom): architecture CustomLM"
    assert named in run.stdout + run.stderr
    assert plan_custom_external(tmp_path, {"trust_remote_code": True}).returncode == 0


def test_an_external_model_in_its_own_environment_needs_its_file_not_our_architectures(tmp_path):
    """Whether its architecture builds is for its own transformers to say; its environment file
    must exist in workflow/envs/, named before any job runs."""
    run = plan_custom_external(tmp_path, {"environment": "transformers-4.33.yaml"})
    assert run.returncode == 0, run.stdout + run.stderr
    run = plan_custom_external(tmp_path, {"environment": "transformers-3.yaml"})
    assert run.returncode != 0
    named = "config key external.custom.environment: no file transformers-3.yaml in workflow/envs/"
    assert named in run.stdout + run.stderr
