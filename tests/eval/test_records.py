"""Per-question records from lm-eval's logged samples: the answer chosen, and the question's
disciplines as the tasks' documents (Hugging Face datasets rows) carry them."""

from datasets import Dataset

from sdoc_model.eval.records import question_records
from tests.factories import schema_row

CMB_LEVELS = {"exam_type": "医师考试", "exam_class": "执业医师", "exam_subject": None}


def docs() -> list[dict]:
    """Rows through Hugging Face datasets, as lm-eval reads them from tasks/utils.py."""
    rows = [
        schema_row(id="q1", benchmark="cmb", subject=None) | {"disciplines": CMB_LEVELS},
        schema_row(id="q2", benchmark="cmb", answer="AC", subject="内科学")
        | {"disciplines": {**CMB_LEVELS, "exam_subject": "内科学"}},
    ]
    return list(Dataset.from_list(rows))


def test_multiple_choice_records_keep_choice_and_every_discipline_level():
    one, two = docs()
    samples = [
        {"doc": one, "filtered_resps": [(-1.0, False), (-0.5, True), (-2.0, False), (-3, False)],
         "acc": 0.0},
        {"doc": two, "filtered_resps": [(-4.0, False)] * 5 + [(-1.0, False)] + [(-9.0, False)] * 9,
         "acc": 1.0},
    ]  # fmt: skip
    first, second = question_records("cmb", samples, generative=False)
    assert (first["choice"], first["correct"], first["discipline"]) == ("B", False, None)
    assert first["disciplines"] == CMB_LEVELS  # a level without a label stays, as null
    assert list(first["disciplines"]) == ["exam_type", "exam_class", "exam_subject"]  # coarse first
    assert (second["choice"], second["correct"], second["discipline"]) == ("AC", True, "内科学")
    assert second["disciplines"]["exam_subject"] == "内科学"


def test_generative_records_and_rows_without_disciplines():
    doc = list(Dataset.from_list([schema_row(id="x1", benchmark="cmexam")]))[0]
    [record] = question_records(
        "cmexam_xmed_gen", [{"doc": doc, "filtered_resps": ["答案是A"], "exact_match": 1.0}], True
    )
    assert (record["choice"], record["correct"], record["scores"]) == ("A", True, "答案是A")
    assert record["discipline"] is None and record["disciplines"] is None
