"""Paired comparisons of two models scored on the same questions: more than chance?

For models A and B and their per-question scores on the same n questions (1 right, 0 wrong;
for a model trained with several seeds, the fraction of its runs that answered right):

* delta: accuracy(A) - accuracy(B), in percentage points (with seeds: of the means over runs);
* a 95% paired bootstrap interval of delta: questions resampled with replacement, the same
  draw for both models (scipy.stats.bootstrap, paired, percentile method, a fixed seed);
* the exact McNemar p-value: a two-sided binomial test (scipy.stats.binomtest) of the
  discordant questions (A scored higher against B scored higher) at p = 1/2, 1 when none; with
  seeds this is the sign test of the per-question differences, McNemar's test with one run each;
* Holm's step-down correction of a table's p-values (family-wise error rate).

The report compares every trained model with LoRA, with the base model and, on the ablation
ladder, with the previous rung, from the per-question records of the evaluations
(`tables/significance.*`). The pairs are the questions: the interval covers the question
sample; averaging each question over the seeds takes the training noise out of the scores
rather than into the interval (the tables show the spread between seeds beside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest, bootstrap

from sdoc_model.eval.tasks import TASKS
from sdoc_model.report.plan import AVERAGE, ReportPlan
from sdoc_model.report.tables import MINUS, Table, delta_text

RESAMPLES = 10_000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Comparison:
    n: int
    delta: float  # percentage points
    ci_low: float
    ci_high: float
    p_value: float


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """A against B on the same questions, in the same order: scores in [0, 1]."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(
            f"paired comparison needs two equal, non-empty vectors: {a.shape}, {b.shape}"
        )
    delta = 100 * (a.mean() - b.mean())
    if np.array_equal(a, b) or len(a) == 1:
        low = high = delta  # every resample gives the same difference
    else:
        interval = bootstrap(
            (a, b), _mean_difference, paired=True, vectorized=True, n_resamples=RESAMPLES,
            confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(SEED),
            batch=1000,  # resamples at a time: memory stays small on the full test sets
        ).confidence_interval  # fmt: skip
        low, high = 100 * interval.low, 100 * interval.high
    return Comparison(len(a), delta, float(low), float(high), mcnemar_exact(a, b))


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis=axis) - b.mean(axis=axis)


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided exact McNemar test: the binomial test of the questions A scored higher on
    against those B scored higher on (with 0/1 scores: A-only against B-only successes)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    only_a, only_b = int((a > b).sum()), int((a < b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: the k-th smallest of m is multiplied by
    m - k + 1, made non-decreasing, and capped at 1."""
    order = np.argsort(p_values, kind="stable")
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


COLUMNS = ["model", "baseline", "benchmark", "n", "delta", "ci_low", "ci_high", "p_value", "p_holm"]


def significance_frame(plan: ReportPlan, questions: pd.DataFrame) -> pd.DataFrame:
    """Every trained model against each of its baselines, per task and on the average's tasks
    pooled (each question weighing the same), with Holm's correction over the whole table."""
    rows = []
    for model in plan.trained_models:
        for baseline in plan.significance_baselines(model):
            for benchmark in [*plan.tasks, *([AVERAGE] if plan.averaged_tasks else [])]:
                tasks = plan.averaged_tasks if benchmark == AVERAGE else [benchmark]
                a, b = _paired(questions, model, baseline, tasks)
                rows.append({"model": model, "baseline": baseline, "benchmark": benchmark}
                            | asdict(compare(a, b)))  # fmt: skip
    frame = pd.DataFrame(rows, columns=COLUMNS[:-1])
    frame["p_holm"] = holm(frame.p_value.tolist())
    return frame


def _paired(
    questions: pd.DataFrame, model: str, baseline: str, tasks: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Both models' scores on the same questions, in one order (the mean correctness over a
    model's runs); ValueError when they were not scored on the same questions (a stale or
    truncated record file)."""
    chosen = questions[questions.task.isin(tasks)]
    mine, theirs = (_scores(chosen, name) for name in (model, baseline))
    if set(mine.index) != set(theirs.index):
        only = len(set(mine.index) ^ set(theirs.index))
        raise ValueError(
            f"{model} and {baseline} were not scored on the same questions of {', '.join(tasks)} "
            f"({only} question(s) in one record file only): rerun their evaluations"
        )
    return mine.to_numpy(), theirs[mine.index].to_numpy()


def _scores(questions: pd.DataFrame, model: str) -> pd.Series:
    """Per (task, id): the fraction of the model's runs that answered right; ValueError when
    its runs were not all scored on the same questions."""
    records = questions[questions.model == model]
    per_question = records.groupby(["task", "id"], sort=False).correct
    if per_question.size().nunique() > 1:
        raise ValueError(
            f"the runs of {model} were not scored on the same questions: rerun their evaluations"
        )
    return per_question.mean()


def significance_table(plan: ReportPlan, frame: pd.DataFrame) -> Table:
    """Paired comparisons (sdoc_model.report.significance), one row per model, baseline and
    benchmark; the CSV keeps every number unrounded."""
    labels = {**{task: TASKS[task].label for task in plan.tasks}, AVERAGE: "Average (pooled)"}
    cells = pd.DataFrame(
        {
            "Baseline": frame.baseline.to_list(),
            "Benchmark": [labels[name] for name in frame.benchmark],
            "n": [f"{n:,}" for n in frame.n],
            "Δ (pp)": [delta_text(d / 100) for d in frame.delta],
            "95% CI (pp)": [
                f"[{low:+.1f}, {high:+.1f}]".replace("-", MINUS)
                for low, high in zip(frame.ci_low, frame.ci_high, strict=True)
            ],
            "p": [f"{p:.3g}" for p in frame.p_value],
            "p (Holm)": [f"{p:.3g}" for p in frame.p_holm],
        },
        index=pd.Index(frame.model.to_list(), name="Model"),
    )
    note = (
        "Paired comparisons on the same questions: Δ is the accuracy difference in percentage "
        "points, the interval a paired bootstrap (10,000 resamples, fixed seed), p the exact "
        "McNemar test (two-sided binomial test of the discordant questions), p (Holm) the "
        "Holm-corrected p over this whole table (bold: below 0.05). The average pools the "
        "averaged tasks' questions, so each question weighs the same. A model trained with "
        "several seeds scores each question by the fraction of its runs that answered it "
        "right: Δ is then the difference of the means over seeds, and p the sign test of the "
        "per-question differences (McNemar's test when both have one run)."
    )
    held = pd.DataFrame(False, cells.index, cells.columns)
    held["p (Holm)"] = (frame.p_holm < 0.05).to_numpy()  # bold: holds after the correction
    return Table(
        "significance",
        "Paired comparisons",
        frame,
        cells,
        note,
        held,
        text_columns=("Baseline", "Benchmark"),
    )
