"""What a profile's report contains and where its inputs and outputs live.

Everything that depends only on the config (which models go in which table, which knobs get
a sweep plot, every input and output path) is decided here, so the Snakemake rule, the
report builder and the tests agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdoc_model.eval.tasks import AVERAGED_TASKS, TASKS
from sdoc_model.method.variants import ABLATION_LADDER, BASE, FULL_METHOD, LORA
from sdoc_model.profile import (
    SWEEP_LABELS,
    ModelSpec,
    adapter_setting,
    model_runs,
    model_specs,
    sweep_points,
)

AVERAGE = "average"

# Sweeps over these knobs change the number of trainable parameters (the others only retune).
SIZE_KNOBS = frozenset({"num_experts"})

# The Snakemake rule whose `benchmark:` files time the training jobs.
TRAIN_RULE = "train"


@dataclass(frozen=True)
class Sweep:
    """One swept knob: (value, model name) pairs in increasing value."""

    knob: str
    points: tuple[tuple[Any, str], ...]
    default: Any

    @property
    def label(self) -> str:
        return SWEEP_LABELS[self.knob]

    @property
    def varied(self) -> bool:
        """A sweep needs two values to show a trend; one value gets a note instead."""
        return len(self.points) >= 2


@dataclass(frozen=True)
class ReportPlan:
    profile: str
    results_dir: Path
    tasks: tuple[str, ...]
    specs: dict[str, ModelSpec]  # by run: a trained model has one per seed
    variants: tuple[str, ...]
    sweeps: tuple[Sweep, ...]
    synthetic: bool = False  # made-up questions where the mirror has no file (a rehearsal)

    @classmethod
    def from_config(cls, config: dict, results_dir: str | Path) -> ReportPlan:
        unknown = [task for task in config["evaluation"]["tasks"] if task not in TASKS]
        if unknown:
            raise ValueError(
                f"evaluation.tasks: no report metric for {unknown}; "
                f"expected tasks among {sorted(TASKS)}"
            )
        return cls(
            profile=config["profile"],
            results_dir=Path(results_dir),
            tasks=tuple(config["evaluation"]["tasks"]),
            specs=model_specs(config),
            variants=tuple(config["variants"]),
            sweeps=_sweeps(config),
            synthetic=config["data"].get("synthetic", False),
        )

    # Which models go where. A model is a table row; a trained one has a run per seed, the
    # first named as the model (sdoc_model.profile).
    @property
    def runs(self) -> dict[str, list[str]]:
        """The runs of every model."""
        return model_runs(self.specs)

    @property
    def main_models(self) -> list[str]:
        """Variants and external models; sweep points have their own tables."""
        return [
            name
            for name, spec in self.specs.items()
            if name in self.variants or spec.kind == "external"
        ]

    @property
    def ladder(self) -> list[str]:
        """The ablation ladder's variants in this profile; empty without the full method."""
        rungs = [variant for variant in ABLATION_LADDER if variant in self.variants]
        return rungs if FULL_METHOD in rungs and len(rungs) > 1 else []

    @property
    def trained_models(self) -> list[str]:
        return [model for model in self.runs if self.specs[model].trained]

    @property
    def trained_runs(self) -> list[str]:
        return [name for name, spec in self.specs.items() if spec.trained]

    @property
    def trained_variants(self) -> list[str]:
        return [name for name in self.trained_models if name in self.variants]

    @property
    def moe_models(self) -> list[str]:
        return [name for name in self.trained_models if self.specs[name].moe]

    @property
    def moe_runs(self) -> list[str]:
        return [run for model in self.moe_models for run in self.runs[model]]

    @property
    def params_models(self) -> list[str]:
        """Trained variants and the sweep points that change the trainable parameter count."""
        resized = {
            model for sweep in self.sweeps if sweep.knob in SIZE_KNOBS for _, model in sweep.points
        }
        return [name for name in self.trained_models if name in self.variants or name in resized]

    @property
    def averaged_tasks(self) -> list[str]:
        return [task for task in self.tasks if task in AVERAGED_TASKS]

    # Inputs.
    def eval_json(self, model: str, task: str) -> Path:
        return self.results_dir / "eval" / model / f"{task}.json"

    def questions_jsonl(self, model: str, task: str) -> Path:
        return self.results_dir / "eval" / model / f"{task}.questions.jsonl"

    def significance_baselines(self, model: str) -> list[str]:
        """What a trained model is compared with, question by question: LoRA and the base
        model, those of them the profile has, and on the ablation ladder its previous rung."""
        baselines = [baseline for baseline in (LORA, BASE) if baseline in self.specs]
        if model in self.ladder[1:]:
            baselines.append(self.ladder[self.ladder.index(model) - 1])
        return [baseline for baseline in baselines if baseline != model]

    def routing_json(self, model: str) -> Path:
        """The expert-specialisation probe's counts of a mixture-of-experts model."""
        return self.results_dir / "routing" / f"{model}.json"

    def train_summary(self, model: str) -> Path:
        return self.results_dir / "train" / model / "summary.json"

    def train_metrics(self, model: str) -> Path:
        return self.results_dir / "train" / model / "metrics.jsonl"

    def train_benchmark(self, model: str) -> Path:
        return self.results_dir / "benchmarks" / TRAIN_RULE / f"{model}.tsv"

    @property
    def leakage_report(self) -> Path:
        return self.results_dir / "data" / "leakage.json"

    def result_inputs(self) -> dict[Path, str]:
        """Data, evaluation and training outputs the report reads, each with what produces it."""
        inputs = {self.leakage_report: "training/evaluation overlap report of the data rules"}
        inputs |= {
            self.eval_json(model, task): f"lm-eval result of model {model!r} on task {task!r}"
            for model in self.specs
            for task in self.tasks
        }
        inputs |= {
            self.questions_jsonl(model, task): f"per-question records of {model!r} on {task!r}"
            for model in self.specs
            for task in self.tasks
        }
        for run in self.trained_runs:
            inputs[self.train_summary(run)] = f"training summary of model {run!r}"
            inputs[self.train_metrics(run)] = f"training metrics log of model {run!r}"
        for run in self.moe_runs:
            inputs[self.routing_json(run)] = f"expert routing probe of model {run!r}"
        return inputs

    def benchmark_inputs(self) -> dict[Path, str]:
        """Snakemake writes these next to a training job's outputs (the rule's `benchmark:`)."""
        return {
            self.train_benchmark(run): f"Snakemake benchmark of the {TRAIN_RULE!r} job of {run!r}"
            for run in self.trained_runs
        }

    # Outputs.
    @property
    def tables_dir(self) -> Path:
        return self.results_dir / "tables"

    @property
    def figures_dir(self) -> Path:
        return self.results_dir / "figures"

    @property
    def report_path(self) -> Path:
        return self.results_dir / "REPORT.md"

    @property
    def provenance_path(self) -> Path:
        return self.results_dir / "provenance.json"

    def table_names(self) -> list[str]:
        names = ["main"]
        if self.ladder:
            names.append("ablation_variants")
        names += [f"ablation_{sweep.knob}" for sweep in self.sweeps if sweep.varied]
        if self.trained_models:
            names.append("efficiency")
        if any(self.significance_baselines(model) for model in self.trained_models):
            names.append("significance")
        # Always: a profile whose tasks have no discipline labels gets a table saying so.
        names.append("disciplines")
        if self.moe_models:
            names.append("routing_specialisation")
        return names

    def figure_names(self) -> list[str]:
        names = ["disciplines"]
        names += [f"sweep_{sweep.knob}" for sweep in self.sweeps if sweep.varied]
        names += [f"expert_utilisation_{model}" for model in self.moe_models]
        if self.moe_models:
            names += ["routing_nmi", "routing_usage"]
        if self.trained_variants:
            names.append("training_curves")
        if self.trained_models and self.averaged_tasks:
            names.append("accuracy_vs_params")
        return names

    def outputs(self) -> list[Path]:
        tables = [
            self.tables_dir / f"{name}.{ext}"
            for name in self.table_names()
            for ext in ("csv", "md", "tex")
        ]
        figures = [
            self.figures_dir / f"{name}.{ext}"
            for name in self.figure_names()
            for ext in ("png", "pdf")
        ]
        return [*tables, *figures, self.provenance_path, self.report_path]


def _sweeps(config: dict) -> tuple[Sweep, ...]:
    by_knob: dict[str, dict[Any, str]] = {}
    for knob, value, model in sweep_points(config):
        by_knob.setdefault(knob, {})[value] = model
    return tuple(
        Sweep(knob, tuple(sorted(points.items())), adapter_setting(config, knob))
        for knob, points in by_knob.items()
    )
