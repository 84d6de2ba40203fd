"""A model evaluated in an environment of its own (config: external.<name>.environment): the
workflow gives its evaluate job that environment, and the project's evaluation runs there and
scores as it does in the project's environment.

This machine has no conda, so Snakemake's own activation of the environment is not run here;
the tests check the job's environment in Snakemake's plan, then build the environment file's
pip packages into a virtual environment and evaluate a model in it the way the evaluate job
does (the checkout appended to sys.path, as Snakemake's script preamble appends its own)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdoc_model.eval.runner import evaluate_tasks, questions_path
from sdoc_model.utils.jsonl import read_jsonl
from tests.conftest import SAMPLE_TEXTS
from tests.factories import write_data_dir

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "workflow" / "envs"
OWN_ENVIRONMENT = "transformers-4.33.yaml"
TASKS = ("cmb_xmed", "cmmlu_med")

# Snakemake's plan through its Python API (internal names of the pinned snakemake 9): the conda
# environment file of every evaluate job, as `--software-deployment-method conda` would use it.
PLAN_ENVIRONMENTS = """
import sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

snakefile, workdir, configfile = map(Path, sys.argv[1:4])
with SnakemakeApi(OutputSettings()) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[configfile]),
        snakefile=snakefile, workdir=workdir,
    )
    workflow_api.dag(dag_settings=DAGSettings(forceall=True))
    workflow = workflow_api._workflow
    workflow._prepare_dag(forceall=True, ignore_incomplete=False, lock_warn_only=True)
    workflow._build_dag()
    for job in workflow.dag.jobs:
        if job.rule.name == "evaluate":
            env = Path(job.conda_env_spec.file.get_path_or_uri(secret_free=True)).resolve()
            print(job.wildcards.model, env)
"""

EVALUATE = """
import json, sys
from pathlib import Path
repo, model, data, out = sys.argv[1:5]
sys.path.append(repo)  # as Snakemake's script preamble does
import transformers
from sdoc_model.eval.runner import evaluate_tasks
tasks = json.loads(sys.argv[5])
outputs = {task: Path(out) / f"{task}.json" for task in tasks}
evaluate_tasks(f"pretrained={model},trust_remote_code=True", outputs, Path(data),
               num_fewshot={"cmmlu_med": 0}, batch_size=4)
print("transformers", transformers.__version__)
"""


def test_paper_evaluates_huatuogpt2_in_its_own_environment(tmp_path):
    (tmp_path / "config").mkdir()
    paper = tmp_path / "config" / "paper.yaml"
    paper.write_text((REPO / "config" / "paper.yaml").read_text())
    (tmp_path / "plan.py").write_text(PLAN_ENVIRONMENTS)
    run = subprocess.run(
        [sys.executable, str(tmp_path / "plan.py"), str(REPO / "Snakefile"), str(tmp_path),
         str(paper)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    environments = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    config = yaml.safe_load(paper.read_text())
    assert "huatuogpt2_7b" in environments and len(environments) > len(config["external"])
    for model, environment in environments.items():
        own = config["external"].get(model, {}).get("environment")
        assert Path(environment) == (ENVS / (own or "sdoc.yaml")).resolve(), model
    assert config["external"]["huatuogpt2_7b"]["environment"] == OWN_ENVIRONMENT


def pip_packages(environment: Path) -> list[str]:
    dependencies = yaml.safe_load(environment.read_text())["dependencies"]
    return next(item["pip"] for item in dependencies if isinstance(item, dict))


@pytest.fixture(scope="module")
def own_environment(tmp_path_factory) -> Path:
    """The environment file's pip packages in a virtual environment (PyPI; this machine's CPU
    torch wheel where it has one, as `make install` takes it)."""
    venv = tmp_path_factory.mktemp("env") / "venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    find_links = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         *find_links, *pip_packages(ENVS / OWN_ENVIRONMENT)],
        check=True,
    )  # fmt: skip
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def remote_code_model(tmp_path_factory) -> Path:
    """The rehearsal's stand-in for HuatuoGPT2-7B: a tiny model with its own modeling code."""
    from sdoc_model.base_models.prepare import prepare_tiny_model

    folder = tmp_path_factory.mktemp("models") / "remote"
    return prepare_tiny_model(folder, SAMPLE_TEXTS * 20, remote_code=True)


def test_the_project_evaluates_in_the_transformers_4_environment_as_in_its_own(
    own_environment, remote_code_model, tmp_path, monkeypatch
):
    data = write_data_dir(tmp_path / "data")
    monkeypatch.setenv("SDOC_DATA_DIR", str(data))
    (tmp_path / "run_tasks.py").write_text(EVALUATE)
    run = subprocess.run(
        [str(own_environment), str(tmp_path / "run_tasks.py"), str(REPO), str(remote_code_model),
         str(data), str(tmp_path / "own"), json.dumps(TASKS)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "transformers 4.33.1" in run.stdout
    outputs = {task: tmp_path / "project" / f"{task}.json" for task in TASKS}
    evaluate_tasks(
        f"pretrained={remote_code_model},trust_remote_code=True", outputs, data,
        num_fewshot={"cmmlu_med": 0}, batch_size=4,
    )  # fmt: skip
    for task, path in outputs.items():
        expected = read_jsonl(questions_path(path))
        actual = read_jsonl(questions_path(tmp_path / "own" / f"{task}.json"))
        assert expected and [r["id"] for r in actual] == [r["id"] for r in expected]
        assert [r["choice"] for r in actual] == [r["choice"] for r in expected], task
        for own, project in zip(actual, expected, strict=True):
            assert own["scores"] == pytest.approx(project["scores"], rel=1e-4, abs=1e-4), task
