"""Small files in the official formats of the paper's sources that the offline mirror lacks.

The paper rehearsal (config/rehearsal.yaml, `data.synthetic: true`) runs the paper's whole
graph on a CPU, offline. Its download jobs copy every file the mirror has (the CMB-Exam answer
key, CMMLU) and verify it as usual; for a file the mirror lacks (CMB-Exam train and test
questions on Hugging Face, the official CMExam CSVs) they write a small file of made-up
questions in that file's official format instead, so the paper's readers, the answer-key join
and the discipline labels all run. The CMB-Exam test questions are made for the real answer
key: one per key entry, with its id (written as text for every other entry, as some copies
do), exam type, class, subject and question type. Such files live under the profile's own
raw folder (never the shared `resources/raw/`), and the report records their sha256 like any
other's.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from sdoc_model.data.normalise import load_cmb_answer_key
from sdoc_model.data.sources import (
    CMB_EXAM_TEST,
    CMB_EXAM_TRAIN,
    CMB_EXAM_VAL,
    CMEXAM_TEST,
    CMEXAM_TRAIN,
    CMEXAM_VAL,
    Source,
)
from sdoc_model.utils.atomic import write_text

ROWS = 400  # questions per made-up training or validation file
TERMS = ("高血压", "糖尿病", "肺炎", "心力衰竭", "贫血", "哮喘", "胃炎", "肝硬化", "骨折", "感染")
CMB_CLASSES = (  # (exam type, class, subject), as CMB-Exam labels its questions
    ("医师考试", "执业医师", "内科学"),
    ("医师考试", "执业医师", "外科学"),
    ("护理考试", "护士执业资格", "基础护理学"),
    ("药师考试", "执业药师", "药理学"),
)
CMEXAM_LABELS = (  # (medical discipline, clinical department, disease group)
    ("临床医学", "内科", "循环系统疾病"),
    ("临床医学", "外科", "消化系统疾病"),
    ("中医学", "中医科", "呼吸系统疾病"),
)
CMEXAM_ANNOTATIONS = (
    "Disease Group", "Area of Competency", "Clinical Department", "Medical Discipline",
    "Difficulty level",
)  # fmt: skip


def write_synthetic(source: Source, out: Path, answer_key: Path | None = None) -> Path:
    """Write the made-up file for `source` to `out`; `answer_key` is the verified CMB-Exam key,
    which the CMB-Exam test questions follow."""
    rng = random.Random(source.path)
    if source == CMB_EXAM_TEST:
        if answer_key is None:
            raise ValueError(f"{source.path}: made-up test questions need the real answer key")
        entries = load_cmb_answer_key(answer_key).values()
        text = json.dumps([_cmb_test_question(entry, rng) for entry in entries], ensure_ascii=False)
    elif source in (CMB_EXAM_TRAIN, CMB_EXAM_VAL):
        text = json.dumps([_cmb_question(n, rng) for n in range(ROWS)], ensure_ascii=False)
    elif source in (CMEXAM_TRAIN, CMEXAM_VAL, CMEXAM_TEST):
        text = _cmexam_csv(annotated=source == CMEXAM_TEST, rng=rng)
    else:
        raise ValueError(f"{source.path}: no made-up version of this file (it is in the mirror)")
    write_text(out, text)
    return out


def _options(rng: random.Random, letters: str = "ABCDE") -> dict[str, str]:
    return {letter: f"{rng.choice(TERMS)}的{rng.choice(('诊断', '治疗', '病因', '护理'))}"
            for letter in letters}  # fmt: skip


def _answer(rng: random.Random, question_type: str) -> str:
    if question_type == "多项选择题":
        return "".join(sorted(rng.sample("ABCDE", rng.randint(2, 4))))
    return rng.choice("ABCDE")


def _stem(rng: random.Random, subject: str, number) -> str:
    return f"{subject}：关于{rng.choice(TERMS)}，下列说法正确的是（第{number}题）"


def _cmb_test_question(entry: dict, rng: random.Random) -> dict:
    """A question for an answer-key entry, with as many options as its answer needs (a few
    real keys name an option F)."""
    number = entry["id"]
    last = max("E", *str(entry["answer"]).strip())
    return {
        "id": str(number) if int(number) % 2 else number,
        "exam_type": entry["exam_type"],
        "exam_class": entry["exam_class"],
        "exam_subject": entry["exam_subject"],
        "question": _stem(rng, entry["exam_subject"], number),
        "answer": "",
        "question_type": entry["question_type"],
        "option": _options(rng, "ABCDEFGH"[: "ABCDEFGH".index(last) + 1]),
    }


def _cmb_question(number: int, rng: random.Random) -> dict:
    exam_type, exam_class, subject = rng.choice(CMB_CLASSES)
    question_type = rng.choice(("单项选择题", "单项选择题", "多项选择题"))
    return {
        "exam_type": exam_type,
        "exam_class": exam_class,
        "exam_subject": subject,
        "question": _stem(rng, subject, number),
        "answer": _answer(rng, question_type),
        "question_type": question_type,
        "option": _options(rng),
        "explanation": f"{rng.choice(TERMS)}是常见病。",
    }


def _cmexam_csv(annotated: bool, rng: random.Random) -> str:
    header = ["Question", "Options", "Answer", "Explanation"]
    header += list(CMEXAM_ANNOTATIONS) if annotated else []
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for number in range(ROWS):
        discipline, department, group = rng.choice(CMEXAM_LABELS)
        options = "\n".join(f"{letter} {text}" for letter, text in _options(rng).items())
        answer = _answer(rng, rng.choice(("单项选择题",) * 9 + ("多项选择题",)))
        row = [_stem(rng, department, number), options, answer, f"{rng.choice(TERMS)}是常见病。"]
        if annotated:
            row += [group, "医学知识", department, discipline, rng.choice(("1", "2", "3"))]
        writer.writerow(row)
    return buffer.getvalue()
