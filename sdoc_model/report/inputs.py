"""Reading the workflow's outputs: lm-eval results, training logs, Snakemake benchmarks."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sdoc_model.eval.tasks import TASKS
from sdoc_model.report.plan import ReportPlan
from sdoc_model.utils.jsonl import read_jsonl
from sdoc_model.utils.provenance import short_commit


class MissingInputError(FileNotFoundError):
    """Report inputs that do not exist, each named with what should have produced it."""

    def __init__(self, missing: dict[Path, str]):
        self.missing = list(missing)
        lines = "\n".join(f"  {path}  ({what})" for path, what in missing.items())
        super().__init__(
            f"{len(missing)} report input(s) missing; "
            f"run the workflow steps that produce them:\n{lines}"
        )


def require_inputs(plan: ReportPlan) -> None:
    expected = {**plan.result_inputs(), **plan.benchmark_inputs()}
    missing = {path: what for path, what in expected.items() if not path.is_file()}
    if missing:
        raise MissingInputError(missing)


@dataclass(frozen=True)
class Score:
    """One (model, task) result: accuracy as a fraction and how it was measured."""

    acc: float
    stderr: float  # NaN where lm-eval could not estimate it ("N/A": one question, or no bootstrap)
    n_shot: str  # "5", or "0/5" when a group's subtasks differ
    n_evaluated: int
    n_available: int


def read_score(path: Path, task: str) -> Score:
    """The headline metric of `task` in an aggregated lm-eval results JSON.

    For a group task (cmmlu_med) lm-eval stores the size-weighted mean over its subtasks
    under the group's own name, in `results` as in `groups`; question counts and shots are
    per leaf task, so they are summed over the group's subtasks.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    metric = TASKS[task].metric
    metrics = data.get("results", {}).get(task)
    if metrics is None:
        raise ValueError(
            f"{path}: no results for task {task!r} (has {sorted(data.get('results', {}))})"
        )
    if metric not in metrics:
        raise ValueError(f"{path}: task {task!r} has no metric {metric!r} (has {sorted(metrics)})")
    stderr_key = metric.replace(",", "_stderr,", 1)
    leaves = _leaf_tasks(task, data.get("group_subtasks", {}))
    try:
        samples = [data["n-samples"][leaf] for leaf in leaves]
        shots = sorted({int(data["n-shot"][leaf]) for leaf in leaves})
    except KeyError as err:
        raise ValueError(
            f"{path}: no 'n-samples'/'n-shot' entry for {err} (lm-eval writes one per task)"
        ) from err
    return Score(
        acc=float(metrics[metric]),
        stderr=_number(metrics.get(stderr_key)),
        n_shot="/".join(map(str, shots)),
        n_evaluated=sum(sample["effective"] for sample in samples),
        n_available=sum(sample["original"] for sample in samples),
    )


def _leaf_tasks(task: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    if task not in group_subtasks:
        return [task]
    return [leaf for child in group_subtasks[task] for leaf in _leaf_tasks(child, group_subtasks)]


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def load_scores(plan: ReportPlan) -> pd.DataFrame:
    """Long table, one row per (run, task): the run's model, acc, stderr, n_shot, n_evaluated,
    n_available."""
    rows = [
        {"run": run, "model": spec.model, "task": task,
         **vars(read_score(plan.eval_json(run, task), task))}
        for run, spec in plan.specs.items()
        for task in plan.tasks
    ]  # fmt: skip
    return pd.DataFrame(rows)


def load_questions(plan: ReportPlan) -> pd.DataFrame:
    """Long table of every per-question record: run, model, task, id, correct, and disciplines
    (the question's classification; None where it has none, or in a record written before
    them)."""
    rows = [
        (run, spec.model, task, record["id"], bool(record["correct"]), record.get("disciplines"))
        for run, spec in plan.specs.items()
        for task in plan.tasks
        for record in read_jsonl(plan.questions_jsonl(run, task))
    ]
    return pd.DataFrame(rows, columns=["run", "model", "task", "id", "correct", "disciplines"])


# The summary.json fields the efficiency table reports.
SUMMARY_FIELDS = (
    "trainable_params",
    "total_params",
    "steps",
    "tokens",
    "tokens_per_s",
    "step_time_s",
    "peak_memory_bytes",
    "wall_time_s",
    "device",
    "precision",
)


def load_training_summaries(plan: ReportPlan) -> pd.DataFrame:
    """One row per training run, indexed by run, with the summary.json fields."""
    rows = []
    for run in plan.trained_runs:
        path = plan.train_summary(run)
        summary = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in SUMMARY_FIELDS if key not in summary]
        if missing:
            raise ValueError(f"{path}: training summary lacks {missing}")
        rows.append({key: summary[key] for key in SUMMARY_FIELDS} | {"run": run})
    return pd.DataFrame(rows).set_index("run")


def run_commits(plan: ReportPlan) -> dict[str, list[str]]:
    """The commits (short_commit) the profile's runs were made at: each training summary's and
    each evaluation result's. A report rebuilt after a code change is newer than its runs."""
    trained = {
        short_commit(json.loads(plan.train_summary(run).read_text(encoding="utf-8"))["git"])
        for run in plan.trained_runs
    }
    evaluated = set()
    for model in plan.specs:
        for task in plan.tasks:
            result = json.loads(plan.eval_json(model, task).read_text(encoding="utf-8"))
            # Results written before sdoc recorded its git state: lm-eval's git describe.
            git = result.get("sdoc", {}).get("git") or {"commit": result.get("git_hash")}
            evaluated.add(short_commit(git))
    return {"training": sorted(trained), "evaluation": sorted(evaluated)}


def load_training_log(path: Path) -> list[dict]:
    """metrics.jsonl: one dict per logged optimizer step; a broken line names file and line."""
    records = read_jsonl(path)
    if not records:
        raise ValueError(f"{path}: no logged steps")
    return records


def read_benchmark(path: Path) -> pd.DataFrame:
    """A Snakemake benchmark TSV (one row per repeat); its "NA"/"-" cells become NaN."""
    return pd.read_csv(path, sep="\t", na_values=["NA", "-"])


def load_benchmarks(results_dir: Path, files: Iterable[str | Path] | None = None) -> pd.DataFrame:
    """Rule, job, s, max_rss (MB) of the benchmark `files` that exist, by default of every
    file under results/P/benchmarks/.

    Files lie at benchmarks/{rule}/{job}.tsv (jobs of a wildcard rule, in subfolders where the
    wildcard holds a path) or at benchmarks/{rule}.tsv (a rule with one job).
    """
    folder = results_dir / "benchmarks"
    paths = folder.rglob("*.tsv") if files is None else map(Path, files)
    frames = []
    for path in sorted({path for path in paths if path.is_file()}):
        rule, *job = path.relative_to(folder).with_suffix("").parts
        frames.append(
            read_benchmark(path)[["s", "max_rss"]].assign(rule=rule, job="/".join(job) or rule)
        )
    columns = ["rule", "job", "s", "max_rss"]
    return pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)
