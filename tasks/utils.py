"""What the task YAMLs cannot say: where the normalised data is, and generative scoring.

Prompts and answer choices live in ``sdoc_model`` (the YAMLs name them directly), so the
training code renders exactly what these tasks ask.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset

from sdoc_model.data.schema import load_records
from sdoc_model.eval.answers import exact_set_match, extract_answer
from sdoc_model.eval.prompts import describe, option_letters

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_VARIABLE = "SDOC_DATA_DIR"
# The demo profile's evaluation sets, as `make demo` leaves them.
DEFAULT_DATA_DIR = REPO_ROOT / "resources" / "demo" / "data" / "eval"


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR)


def _read_rows(path: Path, subject: str | None) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(
            f"Normalised benchmark file {path} does not exist. Produce it with the Snakemake "
            "workflow (its normalise and evaluation_set rules write "
            "resources/<profile>/data/eval/*.jsonl) or `python -m sdoc_model.data normalise`, "
            f"and set {DATA_DIR_VARIABLE} to the folder that holds it."
        )
    # Every row checked against the schema: a bad one is named by file and line.
    rows = [_doc(row) for row in load_records(path) if subject is None or row["subject"] == subject]
    if not rows:
        raise ValueError(f"{path} has no questions" + (f" of subject {subject}" if subject else ""))
    return rows


def _doc(row: dict) -> dict:
    # lm-eval takes the description from a doc field; it cannot call a function.
    return {**row, "prompt_description": describe(row)}


def load_docs(files: dict[str, str], subject: str | None = None, **_metadata) -> dict[str, Dataset]:
    """``custom_dataset`` hook: one split per normalised JSONL file, optionally one subject.

    lm-eval also passes the task's metadata (version, model arguments); they are not needed.
    """
    folder = data_dir()
    return {
        split: Dataset.from_list(_read_rows(folder / name, subject))
        for split, name in files.items()
    }


def process_gen_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Exact set match of the letters extracted from the generated text."""
    predicted = extract_answer(results[0], option_letters(doc))
    return {"exact_match": float(exact_set_match(predicted, doc["answer"]))}
