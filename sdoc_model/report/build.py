"""Building a profile's whole report: tables, figures, provenance.json and REPORT.md."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sdoc_model.method.variants import BASE
from sdoc_model.report import plots
from sdoc_model.report.disciplines import discipline_frame, discipline_table, heatmap_frame
from sdoc_model.report.document import report_markdown
from sdoc_model.report.inputs import (
    load_benchmarks,
    load_questions,
    load_scores,
    load_training_log,
    load_training_summaries,
    require_inputs,
    run_commits,
)
from sdoc_model.report.plan import AVERAGE, ReportPlan
from sdoc_model.report.routing import (
    load_probes,
    routing_frame,
    routing_table,
    write_routing_figures,
)
from sdoc_model.report.significance import significance_frame, significance_table
from sdoc_model.report.tables import (
    Table,
    efficiency_table,
    ladder_table,
    main_table,
    score_columns,
    sweep_table,
    wide_scores,
)
from sdoc_model.utils.provenance import gather_provenance, write_provenance


def build_report(
    config: dict,
    results_dir: str | Path,
    checksums: dict[str, str] | None = None,
    benchmark_files: Iterable[str | Path] | None = None,
) -> list[Path]:
    """Write every table, figure, provenance.json and REPORT.md into `results_dir`.

    The compute section sums `benchmark_files` (the workflow passes its jobs' files; those not
    written, as by a job another profile already ran, are skipped), by default every file
    under results_dir/benchmarks/. Raises MissingInputError, naming each missing file, before
    writing anything.
    """
    plan = ReportPlan.from_config(config, results_dir)
    require_inputs(plan)
    scores = load_scores(plan)
    benchmarks = load_benchmarks(plan.results_dir, benchmark_files)
    summaries = load_training_summaries(plan) if plan.trained_models else None

    questions = load_questions(plan)
    significance = None
    if "significance" in plan.table_names():
        significance = significance_frame(plan, questions)
    disciplines = discipline_frame(plan, questions)
    tables = build_tables(plan, scores, summaries, benchmarks, significance, disciplines)
    probes = load_probes(plan)  # none without mixture-of-experts models
    if probes:
        routing = routing_frame(plan, probes)
        tables["routing_specialisation"] = routing_table(plan, routing, probes)
    for table in tables.values():
        table.write(plan.tables_dir)
    with plots.report_style():
        write_figures(plan, scores, summaries, disciplines)
        if probes:
            write_routing_figures(plan, routing, probes)

    provenance = gather_provenance(config, checksums or {}) | {"runs": run_commits(plan)}
    write_provenance(plan.provenance_path, provenance)
    leakage = json.loads(plan.leakage_report.read_text(encoding="utf-8"))
    markdown = report_markdown(plan, tables, scores, summaries, benchmarks, provenance, leakage)
    plan.report_path.write_text(markdown, encoding="utf-8")
    return plan.outputs()


def build_tables(
    plan: ReportPlan,
    scores: pd.DataFrame,
    summaries: pd.DataFrame | None,
    benchmarks: pd.DataFrame,
    significance: pd.DataFrame | None,
    disciplines: pd.DataFrame,
) -> dict[str, Table]:
    tables = [main_table(plan, scores, significance)]
    if significance is not None:
        tables.append(significance_table(plan, significance))
    tables.append(discipline_table(plan, disciplines))
    if plan.ladder:
        tables.append(ladder_table(plan, scores))
    tables += [sweep_table(plan, sweep, scores) for sweep in plan.sweeps if sweep.varied]
    if summaries is not None:
        tables.append(efficiency_table(plan, summaries, benchmarks))
    return {table.name: table for table in tables}


def write_figures(
    plan: ReportPlan,
    scores: pd.DataFrame,
    summaries: pd.DataFrame | None,
    disciplines: pd.DataFrame,
) -> None:
    folder = plan.figures_dir
    heatmap = plots.discipline_figure(heatmap_frame(plan, disciplines))
    plots.save_figure(heatmap, folder, "disciplines")
    columns = score_columns(plan)
    for sweep in plan.sweeps:
        if sweep.varied:
            models = [model for _, model in sweep.points]
            footer = plots.evaluation_footer(scores[scores.model.isin(models)], list(plan.tasks))
            figure = plots.sweep_figure(sweep, wide_scores(plan, scores, models), columns, footer)
            plots.save_figure(figure, folder, f"sweep_{sweep.knob}")

    curves = {}
    # One log at a time: a long run's expert loads are large, only their mean is kept. Each
    # model's first run (named as the model) stands for it.
    for model in plan.trained_models:
        path = plan.train_metrics(model)
        log = load_training_log(path)
        if model in plan.moe_models:
            figure = plots.expert_utilisation_figure(
                model, plots.mean_expert_load(log, str(path)), len(log)
            )
            plots.save_figure(figure, folder, f"expert_utilisation_{model}")
        if model in plan.trained_variants:
            curves[model] = [
                {key: record.get(key) for key in ("step", *plots.LOSS_LABELS)} for record in log
            ]
    if curves:
        plots.save_figure(plots.training_curves_figure(curves), folder, "training_curves")

    if "accuracy_vs_params" in plan.figure_names():
        footer = plots.evaluation_footer(scores, plan.averaged_tasks)
        points, base_average = params_points(plan, scores, summaries)
        plots.save_figure(
            plots.accuracy_vs_params_figure(points, base_average, footer),
            folder,
            "accuracy_vs_params",
        )


def params_points(
    plan: ReportPlan, scores: pd.DataFrame, summaries: pd.DataFrame
) -> tuple[pd.DataFrame, float | None]:
    """Average accuracy against trainable parameters per model; and the base model's average."""
    sweep_labels = {
        model: f"{sweep.label}={value}"
        for sweep in plan.sweeps
        for value, model in sweep.points
        if model not in plan.variants
    }
    models = plan.params_models
    wide = wide_scores(plan, scores, models)
    points = pd.DataFrame(
        {
            "label": [sweep_labels.get(model, model) for model in models],
            "params": summaries.loc[models, "trainable_params"].to_numpy(),
            "acc": wide[f"{AVERAGE}_acc"],
            "stderr": wide[f"{AVERAGE}_stderr"],
            "sweep": [model in sweep_labels for model in models],
        }
    )
    base_average = None
    if BASE in plan.variants:
        base_average = wide_scores(plan, scores, [BASE])[f"{AVERAGE}_acc"].iloc[0]
    return points, base_average
