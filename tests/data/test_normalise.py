"""Normalisers: the mirror's real files, and small files in each official format written here."""

import csv
import json
from pathlib import Path

import pytest

from sdoc_model.data.__main__ import main
from sdoc_model.data.download import download_dataset, fetch
from sdoc_model.data.normalise import normalise_dataset, quarantine_path
from sdoc_model.data.schema import RowProblem, SchemaError, load_records, record_problems
from sdoc_model.data.sources import (
    CMB_EXAM_TEST,
    CMB_TEST_ANSWER_KEY,
    CMEXAM_TEST,
    CMEXAM_TRAIN,
    CMEXAM_VAL_XLSX,
    CMMLU_MED_SUBJECTS,
)
from tests.factories import schema_row

SMALL_DEMO_SETS = ["cmb_xmed", "cmexam_xmed", "cmmlu_med", "cmmlu_med_dev"]


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory, mirror) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    for name in [*SMALL_DEMO_SETS, "cmexam_val_xlsx"]:
        download_dataset(name, raw, mirror)
    fetch(CMB_TEST_ANSWER_KEY, raw, mirror)
    return raw


@pytest.fixture(scope="module")
def demo_sets(raw_dir, tmp_path_factory) -> dict[str, list[dict]]:
    out = tmp_path_factory.mktemp("normalised")
    for name in SMALL_DEMO_SETS:
        normalise_dataset(name, raw_dir, out / f"{name}.jsonl", strict=True)
    return {name: load_records(out / f"{name}.jsonl") for name in SMALL_DEMO_SETS}


@pytest.fixture(scope="module")
def cmexam_xlsx(raw_dir, tmp_path_factory):
    """The xlsx copy normalised strictly (expected to fail) and leniently, read once each."""
    out = tmp_path_factory.mktemp("xlsx") / "cmexam_val_xlsx.jsonl"
    with pytest.raises(SchemaError) as strict_error:
        normalise_dataset("cmexam_val_xlsx", raw_dir, out, strict=True)
    strict_left_output = out.exists()
    report = normalise_dataset("cmexam_val_xlsx", raw_dir, out, strict=False)
    return strict_error.value, strict_left_output, report, load_records(out)


def test_demo_evaluation_sets_have_the_published_sizes(demo_sets):
    sizes = {name: len(records) for name, records in demo_sets.items()}
    assert sizes == {"cmb_xmed": 2000, "cmexam_xmed": 2000, "cmmlu_med": 1333, "cmmlu_med_dev": 35}
    multi = [r for r in demo_sets["cmexam_xmed"] if r["question_type"] == "multi"]
    assert len(multi) == 62
    assert all(len(r["answer"]) > 1 for r in multi)


def test_every_kept_answer_is_among_its_options(demo_sets, cmexam_xlsx):
    records = [r for rs in demo_sets.values() for r in rs] + cmexam_xlsx[3]
    assert all(set(r["answer"]) <= set(r["options"]) for r in records)


def test_cmmlu_med_covers_the_seven_subjects_by_english_name(demo_sets):
    for name, per_subject in (("cmmlu_med", None), ("cmmlu_med_dev", 5)):
        subjects = [r["subject"] for r in demo_sets[name]]
        assert set(subjects) == set(CMMLU_MED_SUBJECTS)
        if per_subject:
            assert all(subjects.count(s) == per_subject for s in CMMLU_MED_SUBJECTS)
    first = demo_sets["cmmlu_med"][0]
    assert first["id"] == "cmmlu-med-anatomy-000001"
    assert first["disciplines"] == {"subject": "anatomy"}
    assert first["question"] == "女性生殖腺是" and first["options"]["A"] == "卵巢"
    assert first["answer"] == "A" and first["benchmark"] == "cmmlu_med" and first["split"] == "test"


def test_cmmlu_keeps_question_and_option_text_as_published(demo_sets):
    # Byte for byte: lm-eval's cmmlu prompt shows options so (tests/eval/test_cmmlu_parity.py).
    by_id = {r["id"]: r for r in demo_sets["cmmlu_med"]}
    spaced = by_id["cmmlu-med-anatomy-000029"]["options"]["B"]  # ends in U+3000, a CJK space
    assert spaced == " 舌下神经.迷走神经.副神经.颈内静脉\u3000"
    assert by_id["cmmlu-med-anatomy-000034"]["options"]["A"] == " 由平滑肌纤维构成"
    assert by_id["cmmlu-med-genetics-000037"]["options"]["A"] == "1/16 "
    assert by_id["cmmlu-med-virology-000129"]["question"] == "保护病毒核酸的是 "


def test_only_sources_that_classify_their_questions_give_disciplines(demo_sets, cmexam_xlsx):
    # XMedBench's samples and the xlsx copy have no discipline columns: the demo's only
    # disciplines are CMMLU-Med's subjects.
    for records in (demo_sets["cmb_xmed"], demo_sets["cmexam_xmed"], cmexam_xlsx[3]):
        assert not any("disciplines" in r for r in records)
    for name in ("cmmlu_med", "cmmlu_med_dev"):
        assert all(r["disciplines"] == {"subject": r["subject"]} for r in demo_sets[name])


def test_disciplines_map_level_names_to_text_or_null():
    valid = {"exam_type": "医师考试", "exam_class": "执业医师", "exam_subject": None}
    assert record_problems(schema_row() | {"disciplines": valid}) == []
    for bad in (["内科"], {"exam_type": 1}):
        assert record_problems(schema_row() | {"disciplines": bad}) == [
            "disciplines is not a mapping of level names to strings or null"
        ]


def test_xmedbench_options_lose_the_added_full_stop_and_empty_padding(demo_sets):
    padded = demo_sets["cmb_xmed"][6]  # "(E) ." in the source: CMB pads 4-option questions
    assert padded["source"]["row"] == 7
    assert padded["options"] == {
        "A": "足三里、内关、中脘",
        "B": "足三里、天枢、太冲、下脘、关元",
        "C": "内关、足三里、中脘、胃俞",
        "D": "天枢、支沟、归来、大肠俞、上巨虚",
    }
    assert padded["answer"] == "C"
    assert demo_sets["cmexam_xmed"][620]["answer"] == "ABCDE"


def test_cmexam_xlsx_counts_and_the_row_without_answer(cmexam_xlsx, raw_dir):
    strict_error, strict_left_output, report, records = cmexam_xlsx
    xlsx = raw_dir / CMEXAM_VAL_XLSX.path
    assert strict_error.problems == [RowProblem(str(xlsx), 5357, "no answer")]
    assert f"{xlsx}:5357: no answer" in str(strict_error)
    assert not strict_left_output
    assert (report.rows, report.single, report.multi, report.quarantined) == (6810, 6600, 210, 1)
    assert len(records) + report.quarantined == 6811
    with open(quarantine_path(report.output), encoding="utf-8") as handle:
        [quarantined] = [json.loads(line) for line in handle]
    assert (quarantined["row"], quarantined["reason"]) == (5357, "no answer")
    assert quarantined["raw"]["Question"].startswith("由国家制定")
    assert records[0]["id"] == "cmexam-val-xlsx-000001"
    assert records[0]["options"]["B"] == "出血部位" and records[0]["explanation"]


def _write_cmb_questions(path: Path, questions: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(questions, ensure_ascii=False, indent=4), encoding="utf-8")


def _cmb_question(key_entry: dict, question="患者，男，45岁。最可能的诊断是", **fields):
    """A question of the official file: its exam fields as its answer-key entry has them."""
    joined = ("id", "exam_type", "exam_class", "exam_subject", "question_type")
    return (
        {key: key_entry[key] for key in joined}
        | {
            "question": question,
            "answer": "",
            "option": {"A": "甲", "B": "乙", "C": "丙", "D": "丁", "E": "戊"},
        }
        | fields
    )


@pytest.fixture
def cmb_key(raw_dir, tmp_path) -> dict:
    """A verified local copy of the official answer key, and its entries by id."""
    fetch(CMB_TEST_ANSWER_KEY, tmp_path, raw_dir)
    entries = json.loads((tmp_path / CMB_TEST_ANSWER_KEY.path).read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in entries}


def test_cmb_exam_test_joins_the_official_answer_key(cmb_key, tmp_path):
    # Ids 1 and 5 are real entries of the official key: "D" (单项) and "ABCDE" (多项); the
    # second is written as a string, as some copies do.
    _write_cmb_questions(
        tmp_path / CMB_EXAM_TEST.path,
        [_cmb_question(cmb_key[1]), _cmb_question(cmb_key[5], id="5")],
    )
    out = tmp_path / "cmb_exam_test.jsonl"
    report = normalise_dataset("cmb_exam_test", tmp_path, out)
    first, second = load_records(out)
    assert (report.rows, report.single, report.multi) == (2, 1, 1)
    assert (first["answer"], first["question_type"]) == ("D", "single")
    assert first["subject"] == cmb_key[1]["exam_subject"]
    levels = ("exam_type", "exam_class", "exam_subject")  # coarsest first
    assert first["disciplines"] == {level: cmb_key[1][level] for level in levels}
    assert list(first["disciplines"]) == list(levels)
    assert (second["answer"], second["question_type"]) == ("ABCDE", "multi")
    assert first["id"] == "cmb-exam-test-000001" and first["source"]["url"] == CMB_EXAM_TEST.url
    assert (first["source"]["id"], second["source"]["id"]) == ("1", "5")  # the official ids


@pytest.mark.parametrize("field", ["exam_type", "exam_class", "exam_subject", "question_type"])
def test_cmb_exam_question_disagreeing_with_its_key_entry_is_rejected_by_row(
    cmb_key, tmp_path, field
):
    question_file = tmp_path / CMB_EXAM_TEST.path
    wrong = "多项选择题" if field == "question_type" else "其他"
    _write_cmb_questions(
        question_file, [_cmb_question(cmb_key[1]), _cmb_question(cmb_key[2], **{field: wrong})]
    )
    out = tmp_path / "cmb_exam_test.jsonl"
    with pytest.raises(
        SchemaError,
        match=rf"{question_file}:2: id 2 disagrees with its answer key entry: {field} '{wrong}'",
    ):
        normalise_dataset("cmb_exam_test", tmp_path, out)
    report = normalise_dataset("cmb_exam_test", tmp_path, out, strict=False)
    assert (report.rows, report.quarantined) == (1, 1)


def test_cmb_exam_duplicated_question_id_is_an_error(cmb_key, tmp_path):
    question_file = tmp_path / CMB_EXAM_TEST.path
    _write_cmb_questions(
        question_file, [_cmb_question(cmb_key[1]), _cmb_question(cmb_key[1], id="1")]
    )
    with pytest.raises(ValueError, match=r"question id '1' appears twice \(rows 1 and 2\)"):
        normalise_dataset("cmb_exam_test", tmp_path, tmp_path / "out.jsonl", strict=False)


def test_cmb_exam_question_missing_from_the_key_is_reported(cmb_key, tmp_path):
    question_file = tmp_path / CMB_EXAM_TEST.path
    _write_cmb_questions(
        question_file, [_cmb_question(cmb_key[1]), _cmb_question(cmb_key[1], id=999999)]
    )
    out = tmp_path / "cmb_exam_test.jsonl"
    with pytest.raises(SchemaError, match=f"{question_file}:2: id 999999 is not in the answer key"):
        normalise_dataset("cmb_exam_test", tmp_path, out)
    assert not out.exists()


CMEXAM_TEST_HEADER = [
    "Question",
    "Options",
    "Answer",
    "Explanation",
    "Disease Group",
    "Area of Competency",
    "Clinical Department",
    "Medical Discipline",
    "Difficulty level",
]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _cmexam_row(
    question="下列属于癌前病变的是",
    options="A 胃溃疡\nB 肠上皮化生\nC 胃息肉",
    answer="B",
    explanation="肠上皮化生属于癌前病变（B对）。",
):
    return [
        question,
        options,
        answer,
        explanation,
        "消化系统疾病",
        "医学知识",
        "内科",
        "临床医学",
        "1",
    ]


def test_cmexam_official_csv_formats(tmp_path):
    _write_csv(
        tmp_path / CMEXAM_TEST.path,
        CMEXAM_TEST_HEADER,
        [
            _cmexam_row(),
            _cmexam_row(options="A 甲\nB 乙\nC 丙\nD 丁", answer="ABD", explanation=""),
        ],
    )
    _write_csv(
        tmp_path / CMEXAM_TRAIN.path,
        ["Question", "Options", "Answer", "Explanation"],
        [_cmexam_row()[:4]],
    )
    normalise_dataset("cmexam_test", tmp_path, tmp_path / "test.jsonl")
    normalise_dataset("cmexam_train", tmp_path, tmp_path / "train.jsonl")
    single, multi = load_records(tmp_path / "test.jsonl")
    assert single["options"] == {"A": "胃溃疡", "B": "肠上皮化生", "C": "胃息肉"}
    assert (single["answer"], single["subject"], single["split"]) == ("B", "临床医学", "test")
    assert single["explanation"] == "肠上皮化生属于癌前病变（B对）。"
    assert single["disciplines"] == {
        "medical_discipline": "临床医学",
        "clinical_department": "内科",
        "disease_group": "消化系统疾病",
    }
    assert (multi["answer"], multi["question_type"], multi["explanation"]) == ("ABD", "multi", None)
    [train] = load_records(tmp_path / "train.jsonl")
    assert (train["id"], train["subject"], train["split"]) == ("cmexam-train-000001", None, "train")
    assert "disciplines" not in train  # the train file has no annotation columns


BAD_ROWS = [
    (_cmexam_row(options=""), "no options"),
    (_cmexam_row(answer="D"), "answer 'D' is not among the options 'ABC'"),
    (_cmexam_row(question="  "), "empty question"),
    (_cmexam_row(answer=""), "no answer"),
    (_cmexam_row(answer="B?"), "answer 'B?' is not option letters"),
    (_cmexam_row(options="A 甲\n乙"), "option line '乙' does not start with an option letter"),
]


def test_each_kind_of_bad_row_fails_strict_mode_with_file_and_row(tmp_path):
    csv_path = tmp_path / CMEXAM_TEST.path
    _write_csv(csv_path, CMEXAM_TEST_HEADER, [_cmexam_row()] + [row for row, _ in BAD_ROWS])
    out = tmp_path / "out" / "cmexam_test.jsonl"
    with pytest.raises(SchemaError) as error:
        normalise_dataset("cmexam_test", tmp_path, out, strict=True)
    expected = [RowProblem(str(csv_path), n, reason) for n, (_, reason) in enumerate(BAD_ROWS, 2)]
    assert error.value.problems == expected
    assert f"{csv_path}:2: no options" in str(error.value)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no partial output


def test_lenient_mode_quarantines_each_bad_row_with_its_reason(tmp_path):
    _write_csv(
        tmp_path / CMEXAM_TEST.path,
        CMEXAM_TEST_HEADER,
        [_cmexam_row()] + [row for row, _ in BAD_ROWS],
    )
    out = tmp_path / "cmexam_test.jsonl"
    report = normalise_dataset("cmexam_test", tmp_path, out, strict=False)
    assert (report.rows, report.quarantined) == (1, len(BAD_ROWS))
    assert report.quarantine == str(tmp_path / "cmexam_test.quarantine.jsonl")
    with open(report.quarantine, encoding="utf-8") as handle:
        quarantined = [json.loads(line) for line in handle]
    assert [(q["row"], q["reason"]) for q in quarantined] == [
        (n, reason) for n, (_, reason) in enumerate(BAD_ROWS, 2)
    ]
    assert [r["source"]["row"] for r in load_records(out)] == [1]


def test_cli_normalise_reports_bad_rows_and_exits_nonzero(tmp_path, capsys, cli_error):
    _write_csv(tmp_path / CMEXAM_TEST.path, CMEXAM_TEST_HEADER, [_cmexam_row(answer="E")])
    out = tmp_path / "cmexam_test.jsonl"
    args = ["normalise", "cmexam_test", "--raw-dir", str(tmp_path), "--out", str(out)]
    error = cli_error(main, args)
    assert "test_with_annotations.csv:1: answer 'E' is not among the options" in error
    main([*args, "--lenient"])
    assert json.loads(capsys.readouterr().out)["quarantined"] == 1


def test_missing_raw_file_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download cmexam_train"):
        normalise_dataset("cmexam_train", tmp_path, tmp_path / "out.jsonl")
