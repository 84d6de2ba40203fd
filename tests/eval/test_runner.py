"""One evaluation job per model: every task on one loaded model, each scored exactly as a
single-task run scores it, with its result file and per-question records."""

import json

import pytest

from sdoc_model.eval.runner import evaluate_tasks, questions_path
from sdoc_model.utils.jsonl import read_jsonl
from tests.factories import synthetic_data, write_data_dir

TASKS = ("cmb_xmed", "cmexam_xmed", "cmmlu_med", "cmexam_xmed_gen")


@pytest.fixture
def data(tmp_path, monkeypatch):
    folder = write_data_dir(tmp_path / "data")
    monkeypatch.setenv("SDOC_DATA_DIR", str(folder))  # restored after the test
    return folder


def run(model, data, folder, tasks):
    outputs = {task: folder / f"{task}.json" for task in tasks}
    evaluate_tasks(f"pretrained={model}", outputs, data, num_fewshot={"cmmlu_med": 0}, batch_size=4)
    return outputs


def test_tasks_scored_together_score_as_each_alone(tiny_model_dir, data, tmp_path):
    together = run(tiny_model_dir, data, tmp_path / "together", TASKS)
    alone = run(tiny_model_dir, data, tmp_path / "alone", ["cmexam_xmed"])
    assert read_jsonl(questions_path(together["cmexam_xmed"])) == read_jsonl(
        questions_path(alone["cmexam_xmed"])
    )
    for task, path in together.items():
        result = json.loads(path.read_text())
        assert "samples" not in result and task in result["results"]
        assert f"--tasks {task} " in result["sdoc"]["command"]
        assert result["sdoc"]["normalised_sha256"]


def test_every_question_has_a_record(tiny_model_dir, data, tmp_path):
    outputs = run(tiny_model_dir, data, tmp_path, TASKS)
    questions = {task: read_jsonl(questions_path(path)) for task, path in outputs.items()}
    rows = synthetic_data()
    assert [r["id"] for r in questions["cmb_xmed"]] == [r["id"] for r in rows["cmb_xmed"]]
    assert sorted(r["id"] for r in questions["cmmlu_med"]) == sorted(
        r["id"] for r in rows["cmmlu_med"]
    )
    assert {r["discipline"] for r in questions["cmmlu_med"]} == {
        r["subject"] for r in rows["cmmlu_med"]
    }
    for record in [r for records in questions.values() for r in records]:
        assert record["correct"] == (record["choice"] == record["answer"])
    multi = next(r for r in questions["cmexam_xmed"] if r["answer"] == "ACD")
    assert len(multi["scores"]) == 31  # every subset of five letters
    assert all(isinstance(r["scores"], str) for r in questions["cmexam_xmed_gen"])
    accuracy = json.loads(outputs["cmb_xmed"].read_text())["results"]["cmb_xmed"]["acc,none"]
    assert accuracy == sum(r["correct"] for r in questions["cmb_xmed"]) / 3


def test_records_equal_a_stock_single_task_run(tiny_model_dir, data, tmp_path):
    """The per-model job against lm-eval building its own model for one task, as the CLI does."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from sdoc_model.eval.runner import TASKS_DIR

    outputs = run(tiny_model_dir, data, tmp_path, TASKS)
    stock = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model_dir}", tasks=["cmexam_xmed"],
        batch_size=4, device="cpu", log_samples=True,
        task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
    )  # fmt: skip
    expected = [
        [float(loglikelihood) for loglikelihood, _ in sample["filtered_resps"]]
        for sample in stock["samples"]["cmexam_xmed"]
    ]
    records = read_jsonl(questions_path(outputs["cmexam_xmed"]))
    assert [r["scores"] for r in records] == expected
    recorded = json.loads(outputs["cmexam_xmed"].read_text())["config"]
    assert recorded["model_args"] == f"pretrained={tiny_model_dir}"


def test_external_models_load_their_remote_code_and_chat_template_only_when_asked():
    from sdoc_model.eval.runner import cli_command, model_args
    from sdoc_model.profile import ModelSpec

    plain = ModelSpec("m", "external", model_id="org/m", revision="a" * 40)
    custom = ModelSpec("c", "external", model_id="org/c", trust_remote_code=True)
    assert model_args(plain, None, None, "float32") == (
        f"pretrained=org/m,revision={'a' * 40},dtype=float32"
    )
    assert "trust_remote_code=True" in model_args(custom, None, None, "float32")
    assert "--apply_chat_template" in cli_command("pretrained=org/c", "cmb", None, None, 8, True)
    assert "--apply_chat_template" not in cli_command("pretrained=org/m", "cmb", None, None, 8)
