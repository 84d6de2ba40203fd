"""The one JSONL question schema every benchmark and training file is normalised into.

    {"id": str, "benchmark": str, "split": str, "question": str,
     "options": {"A": str, ...}, "answer": "C" or "ABD", "question_type": "single"|"multi",
     "subject": str|null, "explanation": str|null,
     "source": {"url": str, "row": int} (plus "id": the official id, where the source has one),
     "disciplines": {level: str|null, ...} (optional: where the source classifies questions)}

`subject` is the finest discipline label; `disciplines` has every level of the source's own
classification, coarsest first (CMB-Exam: exam_type, exam_class, exam_subject; CMExam's test
file: medical_discipline, clinical_department, disease_group; CMMLU: subject).

Rows are numbered from 1 as data rows: a JSONL line, a JSON array element, or a CSV/xlsx row
not counting the header. `source.row` and every error message use that convention.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sdoc_model.utils.jsonl import iter_jsonl

FIELDS = (
    "id",
    "benchmark",
    "split",
    "question",
    "options",
    "answer",
    "question_type",
    "subject",
    "explanation",
    "source",
)
# Absent where the source has no classification, so files normalised before it still load.
OPTIONAL_FIELDS = ("disciplines",)
QUESTION_TYPES = ("single", "multi")
ROW_CONVENTION = "rows are 1-based data rows, the header not counted"
_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class RowProblem:
    """A row that breaks the schema: where it is and why."""

    file: str
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.reason}"


class SchemaError(ValueError):
    """Rows break the schema; `problems` lists every one of them."""

    MAX_LISTED = 50

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems[: self.MAX_LISTED])
        more = len(problems) - self.MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{len(problems)} row(s) break the schema ({ROW_CONVENTION}):\n{listed}{tail}"
        )


def record_problems(record: dict) -> list[str]:
    """Every way `record` breaks the schema, as short reasons; empty when it is valid."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    if not set(FIELDS) <= set(record) <= {*FIELDS, *OPTIONAL_FIELDS}:
        missing = sorted(set(FIELDS) - set(record))
        extra = sorted(set(record) - {*FIELDS, *OPTIONAL_FIELDS})
        return [f"fields differ from the schema (missing {missing}, unexpected {extra})"]
    problems = []
    if not isinstance(record["id"], str) or not record["id"]:
        problems.append("empty id")
    if not isinstance(record["question"], str) or not record["question"].strip():
        problems.append("empty question")
    problems += _option_problems(record["options"])
    problems += _answer_problems(record["answer"], record["question_type"], record["options"])
    for field in ("subject", "explanation"):
        if record[field] is not None and not isinstance(record[field], str):
            problems.append(f"{field} is neither a string nor null")
    if not _is_classification(record.get("disciplines")):
        problems.append("disciplines is not a mapping of level names to strings or null")
    source = record["source"]
    if not (
        isinstance(source, dict)
        and isinstance(source.get("url"), str)
        and isinstance(source.get("row"), int)
    ):
        problems.append('source is not {"url": str, "row": int}')
    return problems


def _is_classification(value) -> bool:
    return value is None or (
        isinstance(value, dict)
        and all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items())
    )


def _option_problems(options) -> list[str]:
    if not isinstance(options, dict) or not options:
        return ["no options"]
    # Gaps are allowed: a few CMExam questions lost an option (e.g. B-E without A).
    keys = list(options)
    lettered = all(isinstance(k, str) and len(k) == 1 and k in _LETTERS for k in keys)
    if not lettered or sorted(keys) != keys:
        return [f"option letters {keys} are not capital letters in order"]
    empty = [k for k, v in options.items() if not isinstance(v, str) or not v.strip()]
    return [f"option {k} is empty" for k in empty]


def _answer_problems(answer, question_type, options) -> list[str]:
    if not isinstance(answer, str) or not answer:
        return ["no answer"]
    if question_type not in QUESTION_TYPES:
        return [f"question_type {question_type!r} is not one of {QUESTION_TYPES}"]
    problems = []
    if "".join(sorted(set(answer))) != answer:
        problems.append(f"answer {answer!r} is not distinct letters in order")
    if isinstance(options, dict) and options:  # no options is reported on its own
        outside = [c for c in answer if c not in options]
        if outside:
            problems.append(f"answer {answer!r} is not among the options {''.join(options)!r}")
    if question_type == "single" and len(answer) != 1:
        problems.append(f"single-answer question with answer {answer!r}")
    return problems


def duplicate_id_problems(located: Iterable[tuple[str, int, str]]) -> list[RowProblem]:
    """For (file, row, id) triples, a problem for every id already seen earlier."""
    first_seen: dict[str, tuple[str, int]] = {}
    problems = []
    for file, row, record_id in located:
        if record_id in first_seen:
            where = "{}:{}".format(*first_seen[record_id])
            problems.append(RowProblem(file, row, f"duplicate id {record_id!r} (first at {where})"))
        else:
            first_seen[record_id] = (file, row)
    return problems


def load_located(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """(line number, record) for a schema JSONL file; SchemaError (file:line) on any bad row."""
    path = Path(path)
    located, problems = [], []
    for line_number, value, error in iter_jsonl(path):
        reasons = [error] if error else record_problems(value)
        if reasons:
            problems.append(RowProblem(str(path), line_number, "; ".join(reasons)))
        else:
            located.append((line_number, value))
    problems += duplicate_id_problems((str(path), n, r["id"]) for n, r in located)
    if problems:
        raise SchemaError(problems)
    return located


def load_records(path: str | os.PathLike) -> list[dict]:
    """The records of a schema JSONL file; SchemaError (file:line) on any bad row."""
    return [record for _, record in load_located(path)]
