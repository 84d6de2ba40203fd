"""Question overlap between a training mixture and evaluation sets: exact and near duplicates.

Each question (by default with its option texts, sorted, so a reshuffled copy still matches;
a bare stem like "下列说法正确的是" would otherwise match unrelated questions) is canonicalised:
NFKC (folds full-width characters), case folding, whitespace, punctuation and control
characters removed. Exact: equal canonical texts. Near: Jaccard similarity of the character
n-gram sets at or above a threshold.

Near duplicates are found exactly, without sampling, by prefix filtering: order all n-grams by
rarity; if Jaccard(A, B) >= t then A and B share one of the |A| - ceil(t|A|) + 1 rarest n-grams
of A (and likewise of B). Only training rows sharing such a rare n-gram with an evaluation
question are compared: 60k x 20k questions take tens of seconds in pure Python, not hours.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from sdoc_model.utils.atomic import write_text
from sdoc_model.utils.jsonl import write_jsonl

from .schema import load_records


class _DropPunctuation(dict):
    """str.translate table deleting punctuation (P*), separators (Z*) and control (C*) chars."""

    def __missing__(self, codepoint: int) -> int | None:
        keep = unicodedata.category(chr(codepoint))[0] not in "PZC"
        self[codepoint] = codepoint if keep else None
        return self[codepoint]


_DROP = _DropPunctuation()


def canonical(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().translate(_DROP)


def comparison_text(record: dict, with_options: bool = True) -> str:
    text = canonical(record["question"])
    if with_options:
        text += "".join(sorted(canonical(option) for option in record["options"].values()))
    return text


def _ngrams(text: str, n: int) -> set[str]:
    if len(text) <= n:
        return {text} if text else set()
    return {text[i : i + n] for i in range(len(text) - n + 1)}


@dataclass(frozen=True)
class Match:
    eval_index: int
    train_index: int
    jaccard: float
    exact: bool


class NearDuplicateIndex:
    """Training texts indexed by their rarest n-grams, queried with evaluation texts."""

    def __init__(self, train_texts: list[str], ngram: int = 3, threshold: float = 0.8):
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.ngram, self.threshold, self.train_texts = ngram, threshold, train_texts
        train_grams = [_ngrams(t, ngram) for t in train_texts]
        frequency = Counter(chain.from_iterable(train_grams))
        # Rarest first. The filter is exact under any fixed order; rarity keeps postings short.
        order = sorted(frequency, key=frequency.__getitem__)
        self.rank = {gram: i for i, gram in enumerate(order)}
        self.train_sets = []
        self.postings: dict[int, list[int]] = defaultdict(list)
        for index, grams in enumerate(train_grams):
            ids = sorted(map(self.rank.__getitem__, grams))
            self.train_sets.append(set(ids))
            for gram_id in ids[: self._prefix_length(len(ids))]:
                self.postings[gram_id].append(index)

    def _ranked(self, grams: set[str]) -> list[int]:
        # N-grams absent from training come first (rarest of all) with ids no training set has.
        known = sorted(self.rank[g] for g in grams if g in self.rank)
        return list(range(len(known) - len(grams), 0)) + known

    def _prefix_length(self, size: int) -> int:
        return size - math.ceil(self.threshold * size - 1e-9) + 1

    def matches(self, text: str) -> list[tuple[int, float]]:
        """(training index, Jaccard) for every training text this one overlaps, in index order."""
        ids = self._ranked(_ngrams(text, self.ngram))
        size, id_set = len(ids), set(ids)
        candidates = {
            t
            for gram_id in ids[: self._prefix_length(size)]
            for t in self.postings.get(gram_id, ())
        }
        found = []
        for train_index in sorted(candidates):
            other = self.train_sets[train_index]
            if not self.threshold * size - 1e-9 <= len(other) <= size / self.threshold + 1e-9:
                continue  # too different in size to reach the threshold
            shared = len(id_set & other)
            jaccard = shared / (size + len(other) - shared)
            if jaccard >= self.threshold:
                found.append((train_index, jaccard))
        return found

    def find(self, eval_texts: list[str]) -> list[Match]:
        """Every (evaluation, training) pair that is an exact or a near duplicate."""
        return [
            Match(e, t, jaccard, self.train_texts[t] == text)
            for e, text in enumerate(eval_texts)
            for t, jaccard in self.matches(text)
        ]


def _example(kind: str, match: Match, eval_records: list[dict], train: list[dict]) -> dict:
    return {
        "kind": kind,
        "jaccard": round(match.jaccard, 3),
        "eval_id": eval_records[match.eval_index]["id"],
        "train_id": train[match.train_index]["id"],
        "eval_question": eval_records[match.eval_index]["question"],
        "train_question": train[match.train_index]["question"],
    }


def _summarise(
    path: str, eval_records: list[dict], train: list[dict], matches: list[Match], max_examples: int
) -> dict:
    exact_eval = {m.eval_index for m in matches if m.exact}
    near_eval = {m.eval_index for m in matches} - exact_eval
    examples = []
    for kind, wanted in (("exact", exact_eval), ("near", near_eval)):
        chosen = [m for m in matches if m.eval_index in wanted and m.exact == (kind == "exact")]
        examples += [_example(kind, m, eval_records, train) for m in chosen[:max_examples]]
    leaked = len(exact_eval) + len(near_eval)
    return {
        "path": path,
        "rows": len(eval_records),
        "exact": len(exact_eval),
        "near": len(near_eval),
        "leaked": leaked,
        "leaked_fraction": round(leaked / len(eval_records), 4) if eval_records else 0.0,
        "training_rows_matched": len({m.train_index for m in matches}),
        "examples": examples,
    }


def check_leakage(
    train_path: str | os.PathLike,
    eval_paths: list[str | os.PathLike],
    json_path: str | os.PathLike,
    markdown_path: str | os.PathLike,
    *,
    ngram: int = 3,
    threshold: float = 0.8,
    with_options: bool = True,
    max_examples: int = 5,
    drop_to: str | os.PathLike | None = None,
    min_kept: int = 1,
) -> dict:
    """Compare the mixture with every evaluation set and write the JSON and Markdown reports.

    With `drop_to`, the mixture minus every training row that matched an evaluation question
    is written there, and the report lists the dropped ids; if fewer than `min_kept` rows would
    be left, ValueError with the counts instead (the reports are still written).
    """
    names = [Path(p).name.removesuffix(".jsonl") for p in eval_paths]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluation sets need distinct file names, got {names}")
    train = load_records(train_path)
    evals = {name: load_records(path) for name, path in zip(names, eval_paths, strict=True)}
    index = NearDuplicateIndex([comparison_text(r, with_options) for r in train], ngram, threshold)
    report_sets, leaked_train = {}, set()
    for name, path in zip(names, eval_paths, strict=True):
        matches = index.find([comparison_text(r, with_options) for r in evals[name]])
        leaked_train |= {m.train_index for m in matches}
        report_sets[name] = _summarise(str(path), evals[name], train, matches, max_examples)
    report = {
        "training": {"path": str(train_path), "rows": len(train)},
        "method": {
            "compared": "question + options" if with_options else "question",
            "normalisation": "NFKC, case folding, whitespace/punctuation/control removed",
            "ngram": ngram,
            "jaccard_threshold": threshold,
        },
        "eval_sets": report_sets,
        "training_rows_leaked": len(leaked_train),
        "dropped": None,
    }
    kept = [r for i, r in enumerate(train) if i not in leaked_train]
    if drop_to is not None:
        report["dropped"] = {
            "output": str(drop_to),
            "rows_dropped": len(leaked_train),
            "rows_kept": len(kept),
            "ids": [train[i]["id"] for i in sorted(leaked_train)],
        }
    write_text(json_path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    write_text(markdown_path, markdown_summary(report))
    if drop_to is not None:
        _require_enough_left(report, len(kept), min_kept)
        write_jsonl(drop_to, kept)
    return report


def _require_enough_left(report: dict, kept: int, min_kept: int) -> None:
    if kept >= min_kept:
        return
    matched = ", ".join(
        f"{name}: {s['training_rows_matched']}" for name, s in report["eval_sets"].items()
    )
    dropped = report["dropped"]["ids"]
    ids, more = (
        ", ".join(dropped[:10]),
        f" and {len(dropped) - 10} more" if len(dropped) > 10 else "",
    )
    raise ValueError(
        f"{report['training']['path']}: {report['training_rows_leaked']} of its "
        f"{report['training']['rows']} rows match evaluation questions (training rows matched "
        f"per set: {matched}); dropping them would leave {kept}, fewer than the {min_kept} "
        f"needed. Add training data, or keep the matched rows (ids: {ids}{more})."
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def overlap_summary(report: dict) -> list[str]:
    """Markdown lines: what was compared, leaks per evaluation set, what was dropped."""
    method, training = report["method"], report["training"]
    lines = [
        f"Training mixture `{training['path']}` ({training['rows']} rows) against every "
        f"evaluation set. Compared: {method['compared']}, after {method['normalisation']}. "
        f"Exact: equal texts. Near: character {method['ngram']}-gram Jaccard >= "
        f"{method['jaccard_threshold']}, not exact.",
        "",
        "| evaluation set | questions | exact | near | leaked | training rows matched |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in report["eval_sets"].items():
        lines.append(
            f"| {name} | {s['rows']} | {s['exact']} | {s['near']} | {s['leaked']} "
            f"({s['leaked_fraction']:.2%}) | {s['training_rows_matched']} |"
        )
    lines += [
        "",
        f"Training rows matching an evaluation question: {report['training_rows_leaked']}.",
    ]
    dropped = report["dropped"]
    if dropped:
        lines.append(
            f"Dropped {dropped['rows_dropped']} of them; {dropped['rows_kept']} rows "
            f"written to `{dropped['output']}` (ids in the JSON report)."
        )
    else:
        lines.append("They were not dropped.")
    return lines


def markdown_summary(report: dict) -> str:
    lines = ["# Training / evaluation overlap", "", *overlap_summary(report)]
    for name, s in report["eval_sets"].items():
        if s["examples"]:
            lines += ["", f"## Examples: {name}", ""]
            lines += [
                f"- {x['kind']} (Jaccard {x['jaccard']:.2f}) `{x['eval_id']}` / "
                f"`{x['train_id']}`: {_one_line(x['eval_question'])} / "
                f"{_one_line(x['train_question'])}"
                for x in s["examples"]
            ]
    return "\n".join(lines) + "\n"
