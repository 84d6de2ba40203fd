"""Normalised benchmark rows made up for tests, in the schema the data layer writes."""

from pathlib import Path

from sdoc_model.data.benchmarks import CMMLU_MED_SUBJECTS
from sdoc_model.data.schema import FIELDS
from sdoc_model.utils.jsonl import write_jsonl


def schema_row(**fields) -> dict:
    """A valid normalised row: `fields` override the defaults, options may be given as a list
    of texts (lettered A, B, ...), and question_type follows the answer unless given."""
    row = {
        "id": "q1",
        "benchmark": "cmexam",
        "split": "test",
        "question": "下列说法正确的是",
        "options": ["甲", "乙", "丙", "丁"],
        "answer": "A",
        "subject": None,
        "explanation": None,
        "source": {"url": "https://example.org/data", "row": 1},
    } | fields
    if not isinstance(row["options"], dict):
        row["options"] = dict(zip("ABCDEFG", row["options"], strict=False))
    row.setdefault("question_type", "multi" if len(row["answer"]) > 1 else "single")
    return {key: row[key] for key in FIELDS}


def train_row(number: int, question: str, **fields) -> dict:
    """Training row `number`: its answer cycles through A-D, its source row is number + 1."""
    return schema_row(
        id=f"q{number}", split="train", question=question, answer="ABCD"[number % 4],
        source={"url": "u", "row": number + 1}, **fields,
    )  # fmt: skip


def question(benchmark, split, number, options, answer, subject=None, text=None):
    return schema_row(
        id=f"{benchmark}-{split}-{subject or ''}-{number}",
        benchmark=benchmark,
        split=split,
        question=text or f"关于{subject or benchmark}的第{number}题：下列说法正确的是",
        options=options,
        answer=answer,
        subject=subject,
        source={"url": f"https://example.org/{benchmark}", "row": number},
    )


def synthetic_data():
    """A few questions per dataset: 4-, 5- and 6-option, single and multi-answer, with subjects."""
    five = ["胃溃疡", "十二指肠溃疡", "慢性胃炎", "胃癌", "胆囊炎"]
    iron = ["口服铁剂", "输血", "注射铁剂", "维生素B12", "叶酸"]
    enzymes = ["RNA聚合酶", "DNA聚合酶", "逆转录酶", "连接酶", "解旋酶"]
    cmb = [
        question("cmb", "test", 0, five, "A", "内科学", "患者，男，45岁，餐后上腹痛3年。诊断是"),
        question("cmb", "test", 1, iron, "A", text="治疗缺铁性贫血首选"),
        question("cmb", "test", 2, enzymes, "B", "生物化学", text="DNA复制的主要酶是"),
    ]
    cmexam = [
        question("cmexam", "test", 0, five, "ACD", "消化内科"),
        question("cmexam", "test", 1, five[:4], "C"),
        question("cmexam", "test", 2, [*five, "阑尾炎"], "F"),
        question("cmexam", "test", 3, five, "AB"),
    ]
    cmmlu = {
        split: [
            question("cmmlu_med", split, n, ["甲", "乙", "丙", "丁"], "ABCD"[n % 4], subject)
            for subject in CMMLU_MED_SUBJECTS
            for n in range(size)
        ]
        for split, size in [("test", 2), ("dev", 5)]
    }
    return {
        "cmb_xmed": cmb,
        "cmexam_xmed": cmexam,
        "cmmlu_med": cmmlu["test"],
        "cmmlu_med_dev": cmmlu["dev"],
    }


def write_data_dir(folder: Path) -> Path:
    """A data folder as sdoc_model.data.prepare lays it out (SDOC_DATA_DIR), with the
    synthetic datasets already normalised: the tasks read them without preparing anything."""
    for name, rows in synthetic_data().items():
        write_jsonl(folder / "normalised" / f"{name}.jsonl", rows)
    return folder
