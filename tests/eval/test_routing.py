"""The expert-specialisation probe (sdoc_model.eval.routing) on a tiny mixture-of-experts
checkpoint: which questions it reads, and that it counts k expert choices per real token."""

from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from sdoc_model.eval.prompts import render_question
from sdoc_model.eval.routing import labelled_questions, probe_model
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.model import SparseDoctorModel
from sdoc_model.utils.jsonl import write_jsonl
from tests.factories import synthetic_data


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """CMMLU-Med's synthetic questions, labelled by subject, 3 per subject, and an unlabelled
    row first."""
    rows = synthetic_data()["cmb_xmed"][:1]
    for number in range(3):
        rows += [
            row | {"id": f"{row['id']}-{number}", "disciplines": {"subject": row["subject"]}}
            for row in synthetic_data()["cmmlu_med"][::2]
        ]
    path = tmp_path_factory.mktemp("data") / "cmmlu_med.jsonl"
    write_jsonl(path, rows)
    return path


def checkpoint(base_dir: Path, folder: Path, top_k: int) -> Path:
    config = SparseDoctorConfig(num_experts=4, rank=4, top_k=top_k, dropout=0.0)
    model = SparseDoctorModel(AutoModelForCausalLM.from_pretrained(base_dir), config)
    model.save_pretrained(folder, tokenizer=AutoTokenizer.from_pretrained(base_dir))
    return folder


def test_the_first_questions_of_each_discipline_in_file_order(labelled):
    questions = labelled_questions(labelled, 2)
    assert questions.level == "subject" and len(questions.disciplines) == 7
    assert questions.labels == [index for index in range(7) for _ in range(2)]
    first = next(row for row in synthetic_data()["cmmlu_med"] if row["subject"] == "genetics")
    genetics = questions.disciplines.index("genetics")
    assert questions.prompts[2 * genetics] == render_question(first)  # no header naming it


def test_no_labelled_rows_no_probe_and_no_model_loaded(tmp_path):
    path = tmp_path / "cmb_xmed.jsonl"
    write_jsonl(path, synthetic_data()["cmb_xmed"])
    assert labelled_questions(path, 5) is None
    record = probe_model(tmp_path / "no_model", {"cmb_xmed": path}, 5)
    assert record == {"questions_per_discipline": 5, "datasets": {}}


@pytest.mark.parametrize("top_k", [2, 4], ids=["top-k", "dense"])
def test_every_real_token_adds_one_unit_of_gate_weight(tiny_model_dir, labelled, tmp_path, top_k):
    model_dir = checkpoint(tiny_model_dir, tmp_path / "model", top_k=top_k)
    datasets = {"cmmlu_med": labelled}
    # One batch of all 21 prompts, of different lengths: padding.
    record = probe_model(model_dir, datasets, 3, batch_size=21)
    assert (record["top_k"], record["weights"]) == (top_k, "gates")
    entry = record["datasets"]["cmmlu_med"]
    assert entry["questions"] == [3] * 7
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    questions = labelled_questions(labelled, 3)
    tokens = [0] * 7
    for prompt, label in zip(questions.prompts, questions.labels, strict=True):
        tokens[label] += len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert entry["tokens"] == tokens
    assert len(entry["counts"]) == 7 * 2  # seven projections in each of the two decoder layers
    for counts in entry["counts"].values():
        # Each token's gates sum to 1 (so weights, not counts of experts); padding adds nothing.
        assert [sum(row) for row in counts] == pytest.approx(tokens)
        assert any(value != round(value) for row in counts for value in row)
        assert len({tuple(row) for row in counts}) > 1  # a random router: disciplines differ
