"""What the task YAMLs cannot say: where the questions come from, and generative scoring.

Each task names the datasets it reads (`dataset_kwargs.datasets`); the first use prepares
them (sdoc_model.data.prepare: fetched from $SDOC_MIRROR or the pinned URLs, verified,
normalised into $SDOC_DATA_DIR or the cache folder). Prompts and answer choices live in
``sdoc_model`` (the YAMLs name them directly), so the training code renders exactly what
these tasks ask.
"""

from __future__ import annotations

from datasets import Dataset

from sdoc_model.data.prepare import prepared_dataset
from sdoc_model.data.schema import load_records
from sdoc_model.eval.answers import exact_set_match, extract_answer
from sdoc_model.eval.prompts import describe, option_letters


def _doc(row: dict) -> dict:
    # lm-eval takes the description from a doc field; it cannot call a function.
    return {**row, "prompt_description": describe(row)}


def load_docs(
    datasets: dict[str, str], subject: str | None = None, **_metadata
) -> dict[str, Dataset]:
    """``custom_dataset`` hook: one split per dataset, optionally of one subject.

    lm-eval also passes the task's metadata (version, sources, model arguments); not needed.
    """
    splits = {}
    for split, name in datasets.items():
        path = prepared_dataset(name)
        # Every row checked against the schema: a bad one is named by file and line.
        rows = [_doc(r) for r in load_records(path) if subject is None or r["subject"] == subject]
        if not rows:
            raise ValueError(
                f"{path} has no questions" + (f" of subject {subject}" if subject else "")
            )
        splits[split] = Dataset.from_list(rows)
    return splits


def process_gen_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Exact set match of the letters extracted from the generated text."""
    predicted = extract_answer(results[0], option_letters(doc))
    return {"exact_match": float(exact_set_match(predicted, doc["answer"]))}
