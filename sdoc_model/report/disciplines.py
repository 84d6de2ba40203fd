"""Accuracy by discipline, from the per-question records.

Each record carries its question's `disciplines`: every level of its source's classification,
coarsest first (CMB-Exam: exam type, class and subject; CMExam's test file: medical discipline,
clinical department and disease group; CMMLU-Med: subject), or none (XMedBench's samples). The
table (`tables/disciplines.*`) has every level; the heatmap (`figures/disciplines.*`) each
task's coarsest, which stays readable on the full test sets (CMB-Exam has 173 exam subjects).
"""

from __future__ import annotations

import pandas as pd

from sdoc_model.eval.tasks import TASKS
from sdoc_model.report.plan import ReportPlan
from sdoc_model.report.tables import Table, percent

COLUMNS = ["model", "task", "level", "discipline", "n", "acc"]


def discipline_frame(plan: ReportPlan, questions: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (fraction) and questions per main model, task, level and discipline, ordered by
    task, level (coarsest first), discipline and model; a question without a label at a level
    counts in none of its disciplines. A model with several runs (seeds): the mean over them."""
    labelled = [
        (row.model, row.task, level, label, row.id, row.correct)
        for row in questions[questions.model.isin(plan.main_models)].itertuples()
        for level, label in (row.disciplines or {}).items()
        if label is not None
    ]
    long = pd.DataFrame(labelled, columns=[*COLUMNS[:4], "id", "correct"])
    for column, order in (
        ("model", plan.main_models),
        ("task", plan.tasks),
        ("level", list(dict.fromkeys(long["level"]))),  # as the records list them
    ):
        long[column] = pd.Categorical(long[column], order)
    grouped = long.groupby(["task", "level", "discipline", "model"], observed=True)
    frame = grouped.agg(n=("id", "nunique"), acc=("correct", "mean")).reset_index()[COLUMNS]
    # Plain text again, in this order: later steps group with sort=False.
    return frame.astype({column: str for column in COLUMNS[:4]})


def _counts(group: pd.DataFrame) -> str:
    """Questions of a discipline: one number, unless models were evaluated on different limits."""
    return "/".join(f"{n:,}" for n in sorted(group.n.unique()))


def discipline_table(plan: ReportPlan, frame: pd.DataFrame) -> Table:
    """One row per (task, level, discipline), one accuracy column per main model; the best of
    each row in bold. The CSV is the long frame, unrounded."""
    models = plan.main_models
    rows, best = [], []
    for (task, level, discipline), group in frame.groupby(
        ["task", "level", "discipline"], sort=False
    ):
        acc = group.set_index("model").acc.reindex(models)
        rows.append(
            [TASKS[task].label, level.replace("_", " "), discipline, _counts(group)]
            + list(map(percent, acc))
        )
        best.append([False] * 3 + list(acc == acc.max()))
    header = ["Benchmark", "Level", "Discipline", "n", *models]
    cells = pd.DataFrame(rows, columns=header).set_index("Benchmark")
    unlabelled = ", ".join(TASKS[task].label for task in plan.tasks if task not in set(frame.task))
    if not rows:
        note = f"No evaluated task's questions carry a discipline ({unlabelled}): nothing to show."
    else:
        note = (
            "Accuracy (%) on the questions of each discipline, per level of the benchmark's own "
            "classification; n: questions; best per row in bold."
        )
        if unlabelled:
            note += f" Left out, their questions carry no discipline: {unlabelled}."
    return Table(
        "disciplines",
        "Accuracy by discipline",
        frame,
        cells,
        note,
        pd.DataFrame(best, index=cells.index, columns=cells.columns, dtype=bool),
        text_columns=("Level", "Discipline"),
    )


def heatmap_frame(plan: ReportPlan, frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) of each main model (rows) in each discipline of its task's coarsest level
    (columns, labelled with the discipline, its number of questions and, when several tasks
    have disciplines, the task)."""
    coarsest = frame.groupby("task", sort=False)["level"].first()
    shown = frame[frame["level"] == frame.task.map(coarsest)]
    several = shown.task.nunique() > 1
    labels = {
        key: (f"{TASKS[key[0]].label}: " if several else "") + f"{key[1]} (n={_counts(group)})"
        for key, group in shown.groupby(["task", "discipline"], sort=False)
    }
    wide = shown.pivot(index="model", columns=["task", "discipline"], values="acc")
    wide = wide.reindex(index=plan.main_models, columns=list(labels))
    wide.columns = list(labels.values())
    return 100 * wide
