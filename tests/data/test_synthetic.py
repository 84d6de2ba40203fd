"""The rehearsal's made-up files: each in its official format, read by the paper's readers."""

import json

import pytest

from sdoc_model.data.download import fetch
from sdoc_model.data.normalise import normalise_dataset
from sdoc_model.data.sources import CMB_TEST_ANSWER_KEY, CMEXAM_VAL_XLSX, dataset
from sdoc_model.data.synthetic import ROWS, write_synthetic
from sdoc_model.utils.jsonl import read_jsonl


@pytest.mark.parametrize("name", ["cmb_exam_test", "cmb_exam_train", "cmexam_train", "cmexam_test"])
def test_made_up_files_pass_the_official_readers_strictly(tmp_path, mirror, name):
    key = fetch(CMB_TEST_ANSWER_KEY, tmp_path, mirror)
    for source in dataset(name).files:
        write_synthetic(source, tmp_path / source.path, key)
    report = normalise_dataset(name, tmp_path, tmp_path / "out.jsonl", strict=True)
    rows = read_jsonl(report.output)
    if name == "cmb_exam_test":  # one question per key entry, joined by id, text or number
        answers = json.loads(key.read_text(encoding="utf-8"))
        assert len(rows) == len(answers) == 11_200
        assert [row["answer"] for row in rows] == ["".join(sorted(e["answer"])) for e in answers]
        made_up = json.loads((tmp_path / dataset(name).files[0].path).read_text())
        assert {type(question["id"]) for question in made_up} == {str, int}
    else:
        assert len(rows) == ROWS
    if dataset(name).disciplines:
        assert all(all(row["disciplines"].values()) for row in rows)


def test_a_file_the_mirror_has_is_never_made_up(tmp_path, mirror):
    key = fetch(CMB_TEST_ANSWER_KEY, tmp_path, mirror)
    with pytest.raises(ValueError, match="no made-up version"):
        write_synthetic(CMEXAM_VAL_XLSX, tmp_path / "val.xlsx", key)
