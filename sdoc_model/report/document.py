"""REPORT.md: the tables and figures of a profile with how they were produced."""

from __future__ import annotations

import pandas as pd
import yaml

from sdoc_model.data.leakage import overlap_summary
from sdoc_model.eval.tasks import TASKS
from sdoc_model.method.variants import (
    ABLATION_LADDER,
    BASE,
    FULL_METHOD,
    LORA,
    LORA_MOE,
    SPARSEDOCTOR_NOQUEUE,
)
from sdoc_model.report.plan import ReportPlan
from sdoc_model.report.tables import Table, bytes_text, duration_text, protocol_note
from sdoc_model.utils.provenance import runs_text, short_commit

EXPERT_LOAD_NOTE = (
    "Share of routed tokens each expert received, per adapted layer, averaged over the logged "
    "training steps. Colours diverge at the uniform share 1/E: red experts are over-used, blue "
    "ones starved; a collapsed router shows as one red column."
)


def report_markdown(
    plan: ReportPlan,
    tables: dict[str, Table],
    scores: pd.DataFrame,
    summaries: pd.DataFrame | None,
    benchmarks: pd.DataFrame,
    provenance: dict,
    leakage: dict,
) -> str:
    main_scores = scores[scores.model.isin(plan.main_models)]
    sections = [
        f"# SparseDoctor results: profile `{plan.profile}`",
        _protocol_box(plan, main_scores),
        _generated_line(provenance),
        "## Main results",
        tables["main"].markdown(),
        *_significance_section(plan, tables),
        *_discipline_section(tables),
        "## Ablations",
        *_ladder_section(plan, tables),
        *_sweep_sections(plan, tables),
        *_routing_section(tables, main_scores, summaries),
        *_training_sections(plan, tables),
        "## Training / evaluation overlap",
        "\n".join(overlap_summary(leakage)),
        "Examples of each match: [data/leakage.md](data/leakage.md).",
        "## Provenance",
        *_provenance_sections(provenance, summaries, benchmarks),
    ]
    return "\n\n".join(section.rstrip("\n") for section in sections) + "\n"


def _protocol_box(plan: ReportPlan, scores: pd.DataFrame) -> str:
    box = f"> **Evaluation protocol.** {protocol_note(plan, scores)}"
    if plan.synthetic:
        box += (
            "\n>\n> **A rehearsal.** Where the offline mirror has no file, the questions are "
            "made up in the official formats (`data.synthetic`), and the models are tiny and "
            "barely trained: the numbers below test the plumbing and mean nothing else."
        )
    if (scores.n_evaluated < scores.n_available).any():
        box += (
            "\n>\n> Every number below comes from the first questions of each test set only "
            "(a smoke-test or demo run); with so few questions, differences between models are "
            "mostly noise. The `paper` profile runs the full protocol."
        )
    return box


def _generated_line(provenance: dict) -> str:
    return (
        f"Generated {provenance['generated_at']} by `sdoc_model.report` at commit "
        f"`{short_commit(provenance['git'])}`; {runs_text(provenance['runs'])}."
    )


def _figure(name: str, caption: str) -> str:
    return f"![{caption}](figures/{name}.png)\n\n*{caption}* ([PDF](figures/{name}.pdf))"


def _significance_section(plan: ReportPlan, tables: dict[str, Table]) -> list[str]:
    if "significance" not in tables:
        return []
    frame = tables["significance"].data
    held = frame[frame.p_holm < 0.05]
    seeded = [model for model in plan.trained_models if len(plan.runs[model]) > 1]
    seeds = (
        f" {', '.join(seeded)} were trained with several seeds: each question counts with the "
        "fraction of a model's runs that answered it right, so the tests compare the means over "
        "seeds and still treat the questions as the sample; the spread between seeds is in the "
        "results tables."
        if seeded
        else " Each model was trained once, so the tests treat the questions as the sample."
    )
    fixed = [name for name in (LORA, BASE) if name in plan.specs]
    ladder = "; on the variant ladder, each rung also against the previous one"
    ladder = ladder if plan.ladder else ""
    baselines = f"Every trained model against {' and '.join(fixed)}{ladder}. "
    summary = (
        baselines
        + f"{len(held)} of {len(frame)} differences hold at the 5% level after Holm's correction"
        + (": " + ", ".join(f"{r.model} vs. {r.baseline} on {r.benchmark} "
                            f"({r.delta:+.1f} pp)" for r in held.itertuples()) if len(held) else "")
        + "." + seeds
    )  # fmt: skip
    return ["## Paired comparisons", summary, tables["significance"].markdown()]


def _discipline_section(tables: dict[str, Table]) -> list[str]:
    explanation = (
        "How often each model was right on the questions of each discipline. A discipline is a "
        "label the benchmark itself gives its questions: CMB-Exam's exam type, class and "
        "subject, CMExam's medical discipline, clinical department and disease group, "
        "CMMLU-Med's subject. Questions without one are left out: XMedBench's samples (the CMB "
        "and CMExam questions of the demo and CI profiles) carry none, so there CMMLU-Med's "
        "seven subjects are the only disciplines. The heatmap shows the coarsest level of each "
        "benchmark; a discipline with few questions (n) says little about a model."
    )
    return [
        "## Accuracy by discipline",
        explanation,
        tables["disciplines"].markdown(),
        _figure("disciplines", "Accuracy (%) per model and discipline"),
    ]


def _ladder_section(plan: ReportPlan, tables: dict[str, Table]) -> list[str]:
    if "ablation_variants" not in tables:
        return [
            "### Variant ladder",
            f"Not in this profile: it needs {FULL_METHOD} and another of "
            f"{', '.join(ABLATION_LADDER)}.",
        ]
    return [
        "### Variant ladder",
        "Each rung adds one ingredient: dense soft routing, then top-k sparse routing, then the "
        "contrastive routing loss (in-batch), then the expert memory queue (the full method).",
        tables["ablation_variants"].markdown(),
    ]


def _sweep_sections(plan: ReportPlan, tables: dict[str, Table]) -> list[str]:
    if not plan.sweeps:
        return ["### Sweeps", "No sweeps in this profile."]
    sections = []
    for sweep in plan.sweeps:
        sections.append(f"### Sweep over {sweep.label} (`{sweep.knob}`)")
        if sweep.varied:
            sections += [
                tables[f"ablation_{sweep.knob}"].markdown(),
                _figure(
                    f"sweep_{sweep.knob}",
                    f"Accuracy against {sweep.label}; error bars: \u00b11 standard error",
                ),
            ]
        else:
            values = ", ".join(str(value) for value, _ in sweep.points)
            sections.append(
                f"Only one value ({values}) in this profile, so there is no sweep table or plot."
            )
    return sections


def _routing_section(
    tables: dict[str, Table], scores: pd.DataFrame, summaries: pd.DataFrame | None
) -> list[str]:
    if "routing_specialisation" not in tables:
        return []
    table = tables["routing_specialisation"]
    explanation = (
        "Do the experts specialise? Each mixture-of-experts model read labelled test questions, "
        "the first few of every discipline (the table's note says which), and for every "
        "adapted layer we added up, per discipline, how much weight each token's gates gave "
        "each expert. The normalised mutual "
        "information (NMI) of expert and discipline says how much knowing one tells about the "
        "other: 0 when every discipline uses the experts in the same proportions, 1 when each "
        "discipline has experts of its own. The paper's claim is that the contrastive routing "
        f"loss ({SPARSEDOCTOR_NOQUEUE}, {FULL_METHOD}) specialises experts more than load "
        f"balancing alone ({LORA_MOE}): their NMI should be higher. The models read the "
        "question and its options without the prompt's header, which names the subject: the "
        "router has to tell the discipline from the medicine itself."
    )
    if (scores.n_evaluated < scores.n_available).any():
        steps = "/".join(map(str, sorted(summaries.loc[table.data.run.unique(), "steps"].unique())))
        explanation += (
            f" This is a smoke-test or demo run: its models trained {steps} optimizer steps, so "
            "these numbers show the measurement at work, not the paper's finding."
        )
    means = table.data.groupby(["model", "task"], sort=False).nmi.mean()
    several = table.data.task.nunique() > 1
    summary = "Mean NMI over the adapted layers: " + "; ".join(
        f"{model}{f' ({TASKS[task].label})' if several else ''} {nmi:.3f}"
        for (model, task), nmi in means.items()
    )
    return [
        "## Expert specialisation",
        explanation,
        *([summary + "."] if len(means) else []),
        table.markdown(),
        _figure("routing_nmi", "NMI of expert and discipline per decoder layer, per model"),
        _figure("routing_usage", "Expert use by discipline in the most specialised layers"),
    ]


def _training_sections(plan: ReportPlan, tables: dict[str, Table]) -> list[str]:
    if not plan.trained_models:
        return ["## Training", "No trained models in this profile."]
    figures = set(plan.figure_names())
    sections = ["## Training", "### Efficiency", tables["efficiency"].markdown()]
    if "accuracy_vs_params" in figures:
        sections += [
            "### Accuracy against trainable parameters",
            _figure(
                "accuracy_vs_params",
                "Average accuracy against trainable parameters (log scale) of "
                "the trained variants and the sweep points that change the parameter count (E); "
                "the dashed line is the untrained base model",
            ),
        ]
    if "training_curves" in figures:
        sections += [
            "### Training curves",
            _figure("training_curves", "Training losses per variant"),
        ]
    if plan.moe_models:
        sections += ["### Expert utilisation", EXPERT_LOAD_NOTE]
        sections += [
            _figure(f"expert_utilisation_{model}", f"Mean expert load of {model}")
            for model in plan.moe_models
            if model in plan.variants
        ]
        sweep_models = [model for model in plan.moe_models if model not in plan.variants]
        if sweep_models:
            links = ", ".join(
                f"[{model}](figures/expert_utilisation_{model}.png)" for model in sweep_models
            )
            sections.append(f"Sweep points: {links}.")
    return sections


def _provenance_sections(
    provenance: dict, summaries: pd.DataFrame | None, benchmarks: pd.DataFrame
) -> list[str]:
    host = provenance["host"]
    packages = "\n".join(
        f"| {name} | {version or 'not installed'} |"
        for name, version in provenance["packages"].items()
    )
    devices = (
        ", ".join(sorted(set(summaries.device))) if summaries is not None else "none (no training)"
    )
    sections = [
        "### Software and hardware",
        f"| package | version |\n|:--|:--|\n| python | {provenance['python']} |\n{packages}",
        f"Report built on {host['platform']}, CPU {host['cpu']} ({host['cpu_count']} cores), "
        f"GPUs: {', '.join(host['gpus']) or 'none'}. Training ran on: {devices}.",
        "### Compute",
        _compute_summary(benchmarks),
        "### Data checksums",
        _checksums(provenance["data_checksums"]),
        "### Config",
        f"```yaml\n{yaml.safe_dump(provenance['config'], sort_keys=False, allow_unicode=True)}```",
        "The full record is in [provenance.json](provenance.json).",
    ]
    return sections


def _compute_summary(benchmarks: pd.DataFrame) -> str:
    if benchmarks.empty:
        return "No Snakemake benchmark files found, so no compute totals."
    per_rule = benchmarks.groupby("rule").agg(
        jobs=("job", "nunique"), seconds=("s", "sum"), max_rss=("max_rss", "max")
    )
    rows = "\n".join(
        f"| {row.Index} | {row.jobs} | {duration_text(row.seconds)} | "
        f"{bytes_text(row.max_rss * 2**20)} |"
        for row in per_rule.itertuples()
    )
    return (
        f"Total wall time of the {per_rule.jobs.sum()} benchmarked jobs: "
        f"**{duration_text(benchmarks.s.sum())}** "
        "(summed over jobs; parallel jobs overlap in real time).\n\n"
        f"| rule | jobs | wall time | max RSS |\n|:--|--:|--:|--:|\n{rows}"
    )


def _checksums(checksums: dict[str, str]) -> str:
    if not checksums:
        return "No data checksums were supplied (pass `--checksums FILE.json`)."
    rows = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in checksums.items())
    return f"| file | sha256 |\n|:--|:--|\n{rows}"
