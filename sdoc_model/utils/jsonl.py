"""JSON Lines: one JSON object a line, UTF-8, read with line numbers and written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator

from sdoc_model.utils.atomic import atomic_open


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, object, str | None]]:
    """(line number, parsed value, parse error) for each non-blank line, so that a caller can
    report every bad line of a file rather than the first."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line), None
            except json.JSONDecodeError as error:
                yield line_number, None, f"invalid JSON: {error}"


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every line's object; ValueError naming the file and line of the first that is not one."""
    records = []
    for line_number, value, error in iter_jsonl(path):
        if error or not isinstance(value, dict):
            raise ValueError(f"{path}:{line_number}: {error or 'not a JSON object'}")
        records.append(value)
    return records


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write one JSON object a line (Chinese kept readable), atomically; returns the line count."""
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count
