"""Leakage check: canonical text, exact and near duplicates, the reports, dropping leaked rows."""

import json
import random
import time
from itertools import accumulate, product
from pathlib import Path

import pytest

from sdoc_model.data.__main__ import main
from sdoc_model.data.leakage import NearDuplicateIndex, canonical, check_leakage
from sdoc_model.data.schema import load_records
from sdoc_model.utils.jsonl import write_jsonl
from tests.factories import schema_row


def _record(record_id, question, options=("甲", "乙", "丙", "丁"), benchmark="cmexam"):
    return schema_row(id=record_id, question=question, options=options, benchmark=benchmark)


def _write(path: Path, records: list[dict]) -> Path:
    write_jsonl(path, records)
    return path


def test_canonical_folds_width_case_whitespace_and_punctuation():
    assert canonical("ＡＢＣ１２３，　患者。(男) \n45岁？") == "abc123患者男45岁"
    assert canonical("≥5%") == "≥5"  # symbols (Sm) stay, punctuation (Po) goes
    assert canonical("Na＋") == "na+"


def _grams(text: str, n: int) -> set[str]:
    """Character n-grams; a text shorter than n is its own single gram."""
    return {text[i : i + n] for i in range(len(text) - n + 1)} if len(text) > n else {text}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


@pytest.mark.parametrize(("ngram", "threshold"), [(2, 0.5), (3, 0.7), (3, 0.8), (4, 0.9)])
def test_index_finds_exactly_the_pairs_a_brute_force_finds(ngram, threshold):
    rng = random.Random(ngram * 100 + int(threshold * 10))
    alphabet = "患者男女岁发热咳嗽诊断治疗"

    def text():
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16)))

    train = [text() for _ in range(300)]
    evals = [text() for _ in range(60)] + [t[: len(t) - 1] + "药" for t in train[:40]]
    matches = NearDuplicateIndex(train, ngram, threshold).find(evals)
    found = {(m.eval_index, m.train_index) for m in matches}
    grams = [_grams(t, ngram) for t in train]
    expected = {
        (e, t)
        for (e, text_), t in product(enumerate(evals), range(len(train)))
        if _jaccard(_grams(text_, ngram), grams[t]) >= threshold
    }
    assert expected and found == expected


def test_index_scales_far_beyond_all_pairs():
    # Zipf-distributed two-character "words", like exam text; all 100M pairs of 20k x 5k
    # questions compared in pure Python would take several minutes.
    rng = random.Random(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    words = ["".join(rng.choices(chars, k=2)) for _ in range(5000)]
    cumulative = list(accumulate(1 / rank for rank in range(1, len(words) + 1)))

    def question():
        return "".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(10, 40)))

    train = [question() for _ in range(20_000)]
    evals = [question() for _ in range(5_000)] + [t + "吗" for t in train[:100]]
    start = time.perf_counter()
    matches = NearDuplicateIndex(train, 3, 0.8).find(evals)
    assert time.perf_counter() - start < 60
    assert {(m.eval_index, m.train_index) for m in matches} == {(5_000 + i, i) for i in range(100)}


@pytest.fixture
def mixture_and_evals(tmp_path):
    train = _write(
        tmp_path / "mixture.jsonl",
        [
            _record("train-1", "患者，男，45岁。发热3天，最可能的诊断是"),
            _record(
                "train-2",
                "小儿易患中耳炎的原因是",
                ("后鼻道狭窄", "鼻腔相对较小", "咽鼓管宽、短、直", "喉部较长"),
            ),
            _record("train-3", "完全无关的一道题目：维生素C缺乏可引起"),
            _record("train-4", "下列哪项正确", ("其他", "选项", "完全", "不同")),
        ],
    )
    cmb = _write(
        tmp_path / "cmb_xmed.jsonl",
        [
            _record(
                "cmb-1", "患者, 男, 45岁. 发热3天, 最可能的诊断是？"
            ),  # exact after canonical()
            _record(
                "cmb-2",
                "小儿容易患中耳炎的原因是",
                ("咽鼓管宽、短、直", "后鼻道狭窄", "鼻腔相对较小", "喉部较长"),
            ),  # near, reshuffled
            _record("cmb-3", "下列哪项正确"),  # same bare stem, different options: no leak
        ],
    )
    cmmlu = _write(
        tmp_path / "cmmlu_med.jsonl",
        [_record("cmmlu-1", "甲状腺的动脉来自", benchmark="cmmlu_med")],
    )
    return train, [cmb, cmmlu]


def test_report_counts_exact_and_near_per_evaluation_set(tmp_path, mixture_and_evals):
    train, evals = mixture_and_evals
    report = check_leakage(train, evals, tmp_path / "leak.json", tmp_path / "leak.md")
    cmb, cmmlu = report["eval_sets"]["cmb_xmed"], report["eval_sets"]["cmmlu_med"]
    assert (cmb["rows"], cmb["exact"], cmb["near"], cmb["leaked"]) == (3, 1, 1, 2)
    assert (cmmlu["exact"], cmmlu["near"], cmmlu["training_rows_matched"]) == (0, 0, 0)
    assert [(x["kind"], x["eval_id"], x["train_id"]) for x in cmb["examples"]] == [
        ("exact", "cmb-1", "train-1"),
        ("near", "cmb-2", "train-2"),
    ]
    assert report["training_rows_leaked"] == 2 and report["dropped"] is None
    assert json.loads((tmp_path / "leak.json").read_text(encoding="utf-8")) == report
    markdown = (tmp_path / "leak.md").read_text(encoding="utf-8")
    assert "| cmb_xmed | 3 | 1 | 1 | 2 (66.67%) | 2 |" in markdown
    assert "`cmb-2` / `train-2`" in markdown and "They were not dropped." in markdown


def test_question_only_comparison_flags_a_shared_stem(tmp_path, mixture_and_evals):
    train, evals = mixture_and_evals
    report = check_leakage(train, evals, tmp_path / "r.json", tmp_path / "r.md", with_options=False)
    assert report["eval_sets"]["cmb_xmed"]["exact"] == 2  # cmb-3 now matches train-4


def test_dropping_leaked_rows_is_reported(tmp_path, mixture_and_evals, capsys):
    train, evals = mixture_and_evals
    clean = tmp_path / "clean.jsonl"
    args = [
        "leakage",
        "--train",
        str(train),
        "--eval",
        *map(str, evals),
        "--json",
        str(tmp_path / "r.json"),
        "--markdown",
        str(tmp_path / "r.md"),
        "--drop-leaked-to",
        str(clean),
    ]
    main(args)
    assert json.loads(capsys.readouterr().out)["dropped"] == 2
    assert [r["id"] for r in load_records(clean)] == ["train-3", "train-4"]
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["dropped"] == {
        "output": str(clean),
        "rows_dropped": 2,
        "rows_kept": 2,
        "ids": ["train-1", "train-2"],
    }
    assert "Dropped 2 of them; 2 rows written to" in (tmp_path / "r.md").read_text(encoding="utf-8")


def test_dropping_too_many_rows_fails_with_the_counts_and_keeps_the_reports(
    tmp_path, mixture_and_evals
):
    train, evals = mixture_and_evals
    clean = tmp_path / "clean.jsonl"
    with pytest.raises(
        ValueError,
        match=r"mixture.jsonl: 2 of its 4 rows match evaluation questions \(training rows matched "
        r"per set: cmb_xmed: 2, cmmlu_med: 0\); dropping them would leave 2, fewer than the 3 "
        r"needed",
    ):
        check_leakage(
            train, evals, tmp_path / "r.json", tmp_path / "r.md", drop_to=clean, min_kept=3
        )
    assert not clean.exists()
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["training_rows_leaked"] == 2
