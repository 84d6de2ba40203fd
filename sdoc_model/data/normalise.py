"""Normalisers: one reader per source format, turning its rows into the schema of schema.py.

A reader yields every data row of one file with its 1-based row number, the row as read (kept
for the quarantine file) and either its fields or the reason it could not be parsed.
normalise_dataset() then validates each record. In strict mode any bad row raises SchemaError
listing file:row and reason, and nothing is written; in lenient mode bad rows go to
`<out stem>.quarantine.jsonl` with their reason and are counted. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sdoc_model.utils.jsonl import iter_jsonl, write_jsonl

from .schema import RowProblem, SchemaError, record_problems
from .sources import DatasetSpec, Source, dataset

log = logging.getLogger(__name__)
# Raised whenever a reader's output changes (2: CMMLU text kept as published; 3: disciplines),
# so that the workflow's normalise jobs rerun on data normalised before (one of their params).
NORMALISED_FORMAT = 3


class RowError(ValueError):
    """A row cannot be parsed; the message is the reason."""


@dataclass(frozen=True)
class Parsed:
    row: int
    raw: object
    # question, options, answer and optionally question_type, subject, disciplines, explanation
    fields: dict | None
    error: str | None = None


@dataclass(frozen=True)
class NormaliseReport:
    dataset: str
    output: str
    quarantine: str | None  # None in strict mode
    rows: int
    single: int
    multi: int
    quarantined: int


def quarantine_path(out_path: str | os.PathLike) -> Path:
    """Where lenient mode puts rejected rows: `x.jsonl` -> `x.quarantine.jsonl`."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name.removesuffix(".jsonl") + ".quarantine.jsonl")


def _parse_each(rows: Iterable[tuple[int, object]], convert: Callable[[object], dict]):
    for row, raw in rows:
        try:
            yield Parsed(row, raw, convert(raw))
        except RowError as error:
            yield Parsed(row, raw, None, str(error))


# --- shared cell parsing ------------------------------------------------------------------
def _verbatim(value) -> str:
    return "" if value is None else str(value)


def _text(value) -> str:
    return _verbatim(value).strip()


def _letters(value) -> str:
    """Answer letters in order ("EB" -> "BE"); "" when there is no answer."""
    text = _text(value).upper()
    if text and not re.fullmatch(r"[A-Z]+", text):
        raise RowError(f"answer {value!r} is not option letters")
    return "".join(sorted(text))


def _without_empty(options: dict[str, str]) -> dict[str, str]:
    # CMB pads 4-option questions with an empty "E"; an empty slot is no option.
    return {letter: text for letter, text in options.items() if text}


def _lettered_options(lines: Iterable[str], pattern: re.Pattern) -> dict[str, str]:
    options: dict[str, str] = {}
    for line in lines:
        match = pattern.fullmatch(line.strip())
        if not match:
            raise RowError(f"option line {line!r} does not start with an option letter")
        letter, text = match[1], _text(match[2])
        if letter in options:
            raise RowError(f"option {letter} appears twice")
        options[letter] = text
    return options


# --- XMedBench (Apollo) JSONL -------------------------------------------------------------
_XMED_OPTION = re.compile(r"\(([A-Z])\)(?:\s+(.*))?", re.S)
_XMED_ANSWER = re.compile(r"\(([A-Z]+)\)")


def _xmedbench_fields(raw) -> dict:
    if not isinstance(raw, dict):
        raise RowError("not a JSON object")
    options = _lettered_options(_text(raw.get("option")).split("\n"), _XMED_OPTION)
    # XMedBench writes every option as "(A) text." and adds that full stop itself.
    options = {k: v.removesuffix(".").strip() for k, v in options.items()}
    answer_text = _text(raw.get("anwer", raw.get("answer")))  # "anwer" (sic) is its key
    answer = _XMED_ANSWER.fullmatch(answer_text)
    if answer_text and not answer:
        raise RowError(f"answer {answer_text!r} is not of the form (A) or (ABD)")
    return {
        "question": _text(raw.get("question")),
        "options": options,
        "answer": _letters(answer[1] if answer else ""),
    }


def read_xmedbench_jsonl(path: Path) -> Iterator[Parsed]:
    for row, value, error in iter_jsonl(path):
        if error:
            yield Parsed(row, None, None, error)
        else:
            yield from _parse_each([(row, value)], _xmedbench_fields)


# --- CMMLU CSV (header ",Question,A,B,C,D,Answer") -----------------------------------------
def _csv_rows(path: Path, required: set[str]) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: header lacks the column(s) {sorted(missing)}")
        yield from enumerate(reader, start=1)


def read_cmmlu_csv(path: Path) -> Iterator[Parsed]:
    subject = path.stem  # CMMLU names each file after its English subject

    def fields(raw: dict) -> dict:
        # Text as published: lm-eval's cmmlu prompt strips the question but not the options
        # (" 由平滑肌纤维构成", "1/16 "), and render_question must build that same prompt.
        return {
            "question": _verbatim(raw["Question"]),
            "options": {k: _verbatim(raw[k]) for k in "ABCD"},
            "answer": _letters(raw["Answer"]),
            "subject": subject,
            "disciplines": {"subject": subject},
        }

    return _parse_each(_csv_rows(path, {"Question", "A", "B", "C", "D", "Answer"}), fields)


# --- CMB-Exam JSON (a list of questions), optionally joined with the official answer key ---
_CMB_QUESTION_TYPES = {"单项选择题": "single", "多项选择题": "multi"}


# CMB-Exam's classification, coarsest first (6 exam types, 28 classes, 173 subjects in test).
_CMB_LEVELS = ("exam_type", "exam_class", "exam_subject")
# What a question and its answer-key entry must agree on, besides the id that joins them.
_CMB_JOINED = (*_CMB_LEVELS, "question_type")


def _cmb_id(value) -> str:
    """An official CMB id as text: the key writes integers, other copies may write strings."""
    return str(value).strip()


def load_cmb_answer_key(path: str | os.PathLike) -> dict[str, dict]:
    with open(path, encoding="utf-8") as handle:
        entries = json.load(handle)
    rows = _rows_by_id(path, entries, "answer key")
    if len(rows) != len(entries):
        raise ValueError(f"{path}: {len(entries) - len(rows)} answer key entries have no id")
    return {id_: entries[row - 1] for id_, row in rows.items()}


def _rows_by_id(path: str | os.PathLike, items: list, kind: str) -> dict[str, int]:
    """The row of each CMB id; ValueError when one appears twice, since the join is by id."""
    rows: dict[str, int] = {}
    for row, item in enumerate(items, start=1):
        if isinstance(item, dict) and item.get("id") is not None:
            earlier = rows.setdefault(_cmb_id(item["id"]), row)
            if earlier != row:
                raise ValueError(
                    f"{path}: {kind} id {item['id']!r} appears twice (rows {earlier} and {row})"
                )
    return rows


def _cmb_answer(raw: dict, answer_key: dict | None) -> str:
    own = _letters(raw.get("answer"))
    if answer_key is None:
        return own
    if raw.get("id") is None:
        raise RowError("no id to look up in the answer key")
    entry = answer_key.get(_cmb_id(raw["id"]))
    if entry is None:
        raise RowError(f"id {raw['id']!r} is not in the answer key")
    keyed = _letters(entry.get("answer"))
    if own and own != keyed:
        raise RowError(f"answer {own!r} disagrees with the answer key's {keyed!r}")
    differ = [
        f"{field} {raw.get(field)!r} (key: {entry.get(field)!r})"
        for field in _CMB_JOINED
        if _text(raw.get(field)) != _text(entry.get(field))
    ]
    if differ:
        raise RowError(f"id {raw['id']!r} disagrees with its answer key entry: {', '.join(differ)}")
    return keyed


def _cmb_fields(raw, answer_key: dict | None) -> dict:
    if not isinstance(raw, dict):
        raise RowError("not a JSON object")
    declared = raw.get("question_type")
    if declared not in _CMB_QUESTION_TYPES:
        raise RowError(f"unknown question_type {declared!r}")
    option = raw.get("option")
    if not isinstance(option, dict):
        raise RowError("option is not an object of lettered options")
    return {
        "question": _text(raw.get("question")),
        "options": {str(k).strip(): _text(v) for k, v in option.items()},
        "answer": _cmb_answer(raw, answer_key),
        "question_type": _CMB_QUESTION_TYPES[declared],
        "subject": _text(raw.get("exam_subject")) or None,
        "disciplines": {level: _text(raw.get(level)) or None for level in _CMB_LEVELS},
        "explanation": _text(raw.get("explanation")) or None,
        "source_id": None if raw.get("id") is None else _cmb_id(raw["id"]),
    }


def read_cmb_exam_json(path: Path, answer_key: dict | None = None) -> Iterator[Parsed]:
    with open(path, encoding="utf-8") as handle:
        items = json.load(handle)
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON array of questions")
    if answer_key is not None:
        _rows_by_id(path, items, "question")  # joined by id: each question named once
    return _parse_each(enumerate(items, start=1), partial(_cmb_fields, answer_key=answer_key))


# --- CMExam: official CSV and the xlsx copy of its validation split ------------------------
_CMEXAM_COLUMNS = {"Question", "Options", "Answer", "Explanation"}
_CMEXAM_OPTION = re.compile(r"([A-Z])(?:\s+(.*))?", re.S)  # options are "A xxx\nB yyy"
# The test file's annotation columns that classify a question by discipline, coarsest first
# (its others, Area of Competency and Difficulty level, are no disciplines).
_CMEXAM_LEVELS = ("Medical Discipline", "Clinical Department", "Disease Group")


def _cmexam_cell(value) -> str:
    # The xlsx copy was written from pandas and holds missing cells as the string "nan".
    text = _text(value)
    return "" if text == "nan" else text


def _cmexam_fields(raw: dict) -> dict:
    lines = [s for s in _cmexam_cell(raw["Options"]).splitlines() if s.strip()]
    # Only the test file has the annotation columns; "Medical Discipline" -> medical_discipline.
    levels = {
        c.lower().replace(" ", "_"): _cmexam_cell(raw[c]) or None
        for c in _CMEXAM_LEVELS
        if c in raw
    }
    return {
        "question": _cmexam_cell(raw["Question"]),
        "options": _lettered_options(lines, _CMEXAM_OPTION),
        "answer": _letters(_cmexam_cell(raw["Answer"])),
        "subject": levels.get("medical_discipline"),
        "disciplines": levels or None,
        "explanation": _cmexam_cell(raw["Explanation"]) or None,
    }


def read_cmexam_csv(path: Path) -> Iterator[Parsed]:
    return _parse_each(_csv_rows(path, _CMEXAM_COLUMNS), _cmexam_fields)


def _xlsx_rows(path: Path, required: set[str]) -> Iterator[tuple[int, dict]]:
    from openpyxl import load_workbook  # slow import, needed by this reader only

    workbook = load_workbook(path, read_only=True)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = [_text(cell) for cell in next(rows, ())]
        missing = required - set(header)
        if missing:
            raise ValueError(f"{path}: header lacks the column(s) {sorted(missing)}")
        for number, values in enumerate(rows, start=1):
            if any(v is not None for v in values):  # trailing blank rows are no data
                yield number, dict(zip(header, values, strict=False))
    finally:
        workbook.close()


def _unescape_line_breaks(raw: dict) -> dict:
    # The xlsx copy holds every line break as the two characters backslash and n.
    return {k: v.replace("\\n", "\n") if isinstance(v, str) else v for k, v in raw.items()}


def read_cmexam_xlsx(path: Path) -> Iterator[Parsed]:
    rows = _xlsx_rows(path, _CMEXAM_COLUMNS)
    return _parse_each(rows, lambda raw: _cmexam_fields(_unescape_line_breaks(raw)))


READERS: dict[str, Callable[..., Iterator[Parsed]]] = {
    "xmedbench_jsonl": read_xmedbench_jsonl,
    "cmmlu_csv": read_cmmlu_csv,
    "cmb_exam_json": read_cmb_exam_json,
    "cmexam_csv": read_cmexam_csv,
    "cmexam_xlsx": read_cmexam_xlsx,
}


# --- from rows to a normalised file -------------------------------------------------------
def local_file(raw_dir: str | os.PathLike, source: Source, name: str) -> Path:
    path = Path(raw_dir) / source.path
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; run `python -m sdoc_model.data download {name}` first"
        )
    return path


def _record(name: str, spec: DatasetSpec, source: Source, path: Path, parsed: Parsed) -> dict:
    fields = parsed.fields
    # Several files (CMMLU subjects) each count rows from 1, so the file name joins the id.
    stem = f"-{path.stem}" if len(spec.files) > 1 else ""
    answer = fields["answer"]
    return {
        "id": f"{name.replace('_', '-')}{stem}-{parsed.row:06d}",
        "benchmark": spec.benchmark,
        "split": spec.split,
        "question": fields["question"],
        "options": _without_empty(fields["options"]),
        "answer": answer,
        "question_type": fields.get("question_type") or ("multi" if len(answer) > 1 else "single"),
        "subject": fields.get("subject"),
        "explanation": fields.get("explanation"),
        "source": {"url": source.url, "row": parsed.row}
        | ({"id": fields["source_id"]} if fields.get("source_id") else {}),
    } | ({"disciplines": fields["disciplines"]} if fields.get("disciplines") else {})


def normalise_dataset(
    name: str, raw_dir: str | os.PathLike, out_path: str | os.PathLike, strict: bool = True
) -> NormaliseReport:
    """Normalise the registered dataset `name` from the files under `raw_dir` into `out_path`.

    Strict: any bad row raises SchemaError and nothing is written. Lenient: bad rows are written
    to quarantine_path(out_path) with file, row and reason, and counted in the report.
    """
    spec = dataset(name)
    read = READERS[spec.reader]
    if spec.answer_key is not None:
        key = load_cmb_answer_key(local_file(raw_dir, spec.answer_key, name))
        read = partial(read, answer_key=key)
    kept, rejected = [], []
    for source in spec.files:
        path = local_file(raw_dir, source, name)
        for parsed in read(path):
            record = _record(name, spec, source, path, parsed) if parsed.fields else None
            reasons = [parsed.error] if parsed.error else record_problems(record)
            if reasons:
                rejected.append((RowProblem(str(path), parsed.row, "; ".join(reasons)), parsed.raw))
            else:
                kept.append(record)
    if strict and rejected:
        raise SchemaError([problem for problem, _ in rejected])
    write_jsonl(out_path, kept)
    quarantine = None
    if not strict:
        quarantine = quarantine_path(out_path)
        write_jsonl(
            quarantine,
            ({"file": p.file, "row": p.row, "reason": p.reason, "raw": raw} for p, raw in rejected),
        )
        if rejected:
            log.warning("%s: %d row(s) quarantined in %s", name, len(rejected), quarantine)
    multi = sum(r["question_type"] == "multi" for r in kept)
    return NormaliseReport(
        dataset=name,
        output=str(out_path),
        quarantine=str(quarantine) if quarantine else None,
        rows=len(kept),
        single=len(kept) - multi,
        multi=multi,
        quarantined=len(rejected),
    )
