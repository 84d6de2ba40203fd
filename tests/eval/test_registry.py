"""The task YAMLs in tasks/ are exactly what the registry generates, and lm-eval reads them."""

from pathlib import Path

import yaml

from sdoc_model.eval.tasks import (
    CMMLU_MED,
    CMMLU_MED_SUBJECTS,
    TASKS,
    cmmlu_med_subtask,
    task_yamls,
)

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
