"""The task YAMLs in tasks/ are exactly what the registry generates, and every task scores a
registered dataset whose files it records."""

from pathlib import Path

import yaml

from sdoc_model.data.benchmarks import CMMLU_MED, CMMLU_MED_SUBJECTS
from sdoc_model.data.sources import DATASETS
from sdoc_model.eval.tasks import TASKS, cmmlu_med_subtask, task_yamls

TASKS_DIR = Path(__file__).resolve().parents[2] / "tasks"


def test_committed_task_yamls_are_the_generated_ones():
    generated = task_yamls()
    on_disk = {p.name for p in TASKS_DIR.glob("*.yaml")}
    assert on_disk == set(generated)
    for name, text in generated.items():
        assert (TASKS_DIR / name).read_text(encoding="utf-8") == text, name


def test_every_task_and_subject_has_a_yaml():
    parsed = {name: yaml.safe_load(text) for name, text in task_yamls().items()}
    group = parsed.pop("_cmmlu_med.yaml")
    assert group["group"] == CMMLU_MED
    assert group["task"] == [cmmlu_med_subtask(subject) for subject in CMMLU_MED_SUBJECTS]
    names = {config["task"] for config in parsed.values()}
    assert names == (set(TASKS) - {CMMLU_MED}) | set(group["task"])


def test_every_task_scores_one_registered_dataset_of_its_benchmark():
    for task in TASKS.values():
        for name in task.datasets.values():
            assert name in DATASETS, (task.name, name)
            assert DATASETS[name].benchmark == task.benchmark, (task.name, name)
    scored = [task.dataset for task in TASKS.values() if not task.generative]
    assert len(scored) == len(set(scored))  # one name per question set
    assert len({task.label for task in TASKS.values()}) == len(TASKS)


def test_each_yaml_records_its_datasets_and_their_files_checksums():
    config = yaml.safe_load(task_yamls()["cmb.yaml"])
    assert config["dataset_kwargs"]["datasets"] == {"test": "cmb_exam_test"}
    sources = DATASETS["cmb_exam_test"].sources
    assert config["metadata"]["sources"] == {s.path: s.sha256 for s in sources}
    anatomy = yaml.safe_load(task_yamls()["cmmlu_med_anatomy.yaml"])["metadata"]["sources"]
    assert sorted(anatomy) == [
        "github/haonan-li/CMMLU/data/dev/anatomy.csv",
        "github/haonan-li/CMMLU/data/test/anatomy.csv",
    ]
