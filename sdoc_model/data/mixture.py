"""The training mixture: normalised training files concatenated, optionally capped, shuffled."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from sdoc_model.utils.jsonl import write_jsonl

from .schema import SchemaError, duplicate_id_problems, load_located


@dataclass(frozen=True)
class MixtureInput:
    path: str
    cap: int | None = None  # keep at most this many rows (a seeded sample), None: all

    @classmethod
    def parse(cls, text: str) -> MixtureInput:
        """`PATH` or `PATH:CAP`, as written on the command line."""
        path, _, cap = text.rpartition(":")
        if path and cap.isdigit():
            return cls(path, int(cap))
        return cls(text)


@dataclass(frozen=True)
class MixtureReport:
    output: str
    seed: int
    rows: int
    inputs: list[dict]  # per input: path, cap, rows read, rows used


def build_mixture(
    inputs: list[MixtureInput], out_path: str | os.PathLike, seed: int = 0
) -> MixtureReport:
    """Validate every input row (SchemaError on any bad row or an id used twice), keep at most
    `cap` rows of each input (a seeded sample, in file order), shuffle all with the same seed
    and write one JSONL file atomically."""
    rng = random.Random(seed)
    loaded = [(item, load_located(item.path)) for item in inputs]
    duplicates = duplicate_id_problems(
        (item.path, line, record["id"]) for item, located in loaded for line, record in located
    )
    if duplicates:
        raise SchemaError(duplicates)
    mixture, summary = [], []
    for item, located in loaded:
        records = [record for _, record in located]
        used = records
        if item.cap is not None and item.cap < len(records):
            used = [records[i] for i in sorted(rng.sample(range(len(records)), item.cap))]
        mixture += used
        summary.append(
            {"path": str(Path(item.path)), "cap": item.cap, "rows": len(records), "used": len(used)}
        )
    rng.shuffle(mixture)
    write_jsonl(out_path, mixture)
    return MixtureReport(str(out_path), seed, len(mixture), summary)
