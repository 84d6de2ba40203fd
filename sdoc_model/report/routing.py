"""Expert specialisation: how much the expert a token is routed to tells about the discipline
of its question, per adapted layer, from the routing probe's counts (sdoc_model.eval.routing).

A layer's gate-weighted counts form a contingency table, disciplines x experts. Its
normalised mutual information, NMI = I(D; E) / sqrt(H(D) H(E)) (DESIGN.md; scikit-learn's
"geometric" normalisation), is 0 when every discipline spreads its tokens over the experts
alike and 1 when expert and discipline determine each other. The table
(`tables/routing_specialisation.*`) has the NMI of every model, benchmark and layer;
`figures/routing_nmi.*` compares the models layer by layer, `figures/routing_usage.*` shows
each discipline's use of each expert in the full method's most specialised layers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.stats import entropy

from sdoc_model.eval.tasks import TASKS
from sdoc_model.method.variants import ABLATION_LADDER, FULL_METHOD, LORA_MOE_DENSE
from sdoc_model.report import plots
from sdoc_model.report.plan import ReportPlan
from sdoc_model.report.tables import Table

COLUMNS = [
    "model", "run", "task", "dataset", "level", "disciplines", "questions", "tokens",
    "layer", "depth", "module", "nmi",
]  # fmt: skip
# Highlighted in the figures: sparse routing, + the contrastive loss, + its memory queue.
COMPARED = tuple(variant for variant in ABLATION_LADDER if variant != LORA_MOE_DENSE)
USAGE_LAYERS = 3  # the most specialised layers shown in the usage figure


def normalised_mutual_information(counts) -> float:
    """NMI of a contingency table (disciplines x experts); 0 when it is empty or either
    variable takes one value only."""
    joint = np.asarray(counts, dtype=float)
    if joint.sum() == 0:
        return 0.0
    joint = joint / joint.sum()
    rows, columns = joint.sum(axis=1), joint.sum(axis=0)
    seen = joint > 0
    mutual = (joint[seen] * np.log(joint[seen] / np.outer(rows, columns)[seen])).sum()
    if mutual <= 0:  # independent, up to rounding: then an entropy may be 0 too
        return 0.0
    return float(min(1.0, mutual / np.sqrt(entropy(rows) * entropy(columns))))


def load_probes(plan: ReportPlan) -> dict[str, dict]:
    """The routing probe of every run of a mixture-of-experts model, by run."""
    return {
        run: json.loads(plan.routing_json(run).read_text(encoding="utf-8")) for run in plan.moe_runs
    }


def routing_frame(plan: ReportPlan, probes: dict[str, dict]) -> pd.DataFrame:
    """One row per run, probed dataset and adapted layer, with its NMI; the layer's depth
    (decoder layer) and module type come from its name."""
    task_of = {TASKS[task].dataset: task for task in reversed(plan.tasks)}  # the first scoring it
    rows = []
    for run, probe in probes.items():
        for dataset, entry in probe["datasets"].items():
            probed = (len(entry["disciplines"]), sum(entry["questions"]), sum(entry["tokens"]))
            for layer, counts in entry["counts"].items():
                match = plots.LAYER_NAME.search(layer)
                if match is None:
                    raise ValueError(
                        f"{plan.routing_json(run)}: cannot tell layer index and module from "
                        f"layer name {layer!r}"
                    )
                rows.append(
                    (plan.specs[run].model, run, task_of[dataset], dataset, entry["level"],
                     *probed, layer, int(match[1]), match[2],
                     normalised_mutual_information(counts))
                )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def routing_table(plan: ReportPlan, frame: pd.DataFrame, probes: dict[str, dict]) -> Table:
    """Per model and benchmark: mean and maximum NMI over the adapted layers, the layer of the
    maximum, and the mean per module type, each layer's NMI the mean over the model's runs;
    the highest of each column and benchmark in bold. The CSV is the long frame, every run and
    layer."""
    modules = list(dict.fromkeys(frame.module))
    per_layer = frame.groupby(["model", "task", "layer", "depth", "module"], sort=False).nmi.mean()
    rows = []
    for (model, task), group in per_layer.reset_index().groupby(["model", "task"], sort=False):
        top = group.loc[group.nmi.idxmax()]
        by_module = group.groupby("module").nmi.mean().reindex(modules)
        where = f"L{top.depth} {top.module}"
        rows.append([model, TASKS[task].label, group.nmi.mean(), top.nmi, where, *by_module])
    numeric = ["Mean", "Max", *modules]
    numbers = pd.DataFrame(rows, columns=["Model", "Benchmark", "Mean", "Max", "Max at", *modules])
    bold = pd.DataFrame(False, numbers.index, numbers.columns)
    if rows:  # pandas concatenates the groups, and refuses to concatenate none
        bold[numeric] = numbers.groupby("Benchmark")[numeric].transform(lambda c: c == c.max())
    cells = numbers.astype({column: object for column in numeric})
    cells[numeric] = numbers[numeric].map("{:.3f}".format)
    return Table(
        "routing_specialisation",
        "Expert specialisation: NMI of expert and discipline",
        frame,
        cells.set_index("Model"),
        _table_note(plan, frame, probes),
        bold.set_index(numbers.Model).drop(columns="Model"),
        text_columns=("Benchmark", "Max at"),
    )


def _table_note(plan: ReportPlan, frame: pd.DataFrame, probes: dict[str, dict]) -> str:
    if frame.empty:
        labels = ", ".join(TASKS[task].label for task in plan.tasks)
        return f"No evaluated task's questions carry a discipline ({labels}): nothing to measure."
    probed = frame.drop_duplicates("task")
    sets = "; ".join(
        f"{TASKS[row.task].label}: {row.disciplines} {row.level.replace('_', ' ')}s, "
        f"{row.questions:,} questions, {row.tokens:,} tokens"
        for row in probed.itertuples()
    )
    per_discipline = next(iter(probes.values()))["questions_per_discipline"]
    return (
        "Normalised mutual information between the expert a token is routed to and the "
        "discipline of its question (0: every discipline uses the experts alike; 1: expert and "
        "discipline determine each other), over the adapted layers: mean, maximum and where it "
        "is (decoder layer, module), and the mean per module type; highest per column in bold. "
        f"Probe: the first {per_discipline} questions of each discipline "
        f"({sets}); a token counts toward each expert it is routed to with its gate weight "
        "(dense routing: its router probabilities); NMI = I(E; D) / sqrt(H(E) H(D)). It "
        "compares cleanly between models of the same k."
    )  # fmt: skip


def _colours(models: list[str]) -> dict[str, tuple]:
    """The compared variants in colour, the other models (dense, sweep points) in greys."""
    palette = sns.color_palette("colorblind")
    others = [model for model in models if model not in COMPARED]
    greys = sns.color_palette("Greys", len(others) + 2)[2:]
    return {model: palette[COMPARED.index(model)] for model in models if model in COMPARED} | dict(
        zip(others, greys, strict=True)
    )


def _message(text: str) -> Figure:
    figure = plots.new_figure(4.6, 2.4)
    ax = figure.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return figure


def nmi_figure(frame: pd.DataFrame) -> Figure:
    """Per benchmark: NMI against depth (mean over the modules of a decoder layer), a line per
    model, and each model's mean over every adapted layer."""
    if frame.empty:
        return _message("No evaluated task has discipline labels")
    tasks, models = list(dict.fromkeys(frame.task)), list(dict.fromkeys(frame.model))
    colours = _colours(models)
    figure = plots.new_figure(10, 0.9 + 3.3 * len(tasks))
    axes = figure.subplots(len(tasks), 2, squeeze=False, width_ratios=(2.2, 1))
    for (lines, bars), task in zip(axes, tasks, strict=True):
        shown = frame[frame.task == task]
        for model, group in shown.groupby("model", sort=False):
            by_depth = group.groupby("depth").nmi.mean()
            compared = model in COMPARED
            lines.plot(
                by_depth.index, by_depth, label=model, color=colours[model],
                linewidth=2 if compared else 1.1, linestyle="-" if compared else "--",
                marker="o" if compared else None, markersize=3,
            )  # fmt: skip
        means = shown.groupby("model", sort=False).nmi.mean().reindex(models)
        bars.barh(models, means, color=[colours[model] for model in models])
        bars.invert_yaxis()
        lines.set(xlabel="decoder layer", ylabel="NMI (mean over modules)")
        lines.xaxis.set_major_locator(MaxNLocator(integer=True))
        lines.set_title(TASKS[task].label)
        bars.set(xlabel="mean NMI, all adapted layers")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    figure.suptitle("Expert specialisation: NMI of expert and discipline")
    return figure


def usage_figure(frame: pd.DataFrame, probes: dict[str, dict]) -> Figure:
    """Each discipline's share (%) of its tokens' expert choices, per expert, in the layers with
    the highest NMI of the full method (else of the last compared variant, else any model), on
    the first probed benchmark."""
    if frame.empty:
        return _message("No evaluated task has discipline labels")
    model = next((m for m in (FULL_METHOD, *COMPARED[::-1]) if m in probes), next(iter(probes)))
    task = frame.task.iloc[0]
    # The model's first run (named as the model): shares of several runs' experts do not add.
    top = frame[(frame.run == model) & (frame.task == task)].nlargest(USAGE_LAYERS, "nmi")
    panels = []
    for row in top.itertuples():
        entry = probes[model]["datasets"][row.dataset]
        counts = np.asarray(entry["counts"][row.layer], dtype=float)
        share = 100 * counts / counts.sum(axis=1, keepdims=True)
        panels.append((row, pd.DataFrame(share, index=entry["disciplines"])))
    disciplines, experts = panels[0][1].shape
    figure = plots.new_figure(
        2.2 + len(panels) * (0.8 + 0.4 * experts), max(2.8, 1.6 + 0.3 * disciplines)
    )
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True).ravel()
    uniform, high = 100 / experts, max(share.to_numpy().max() for _, share in panels)
    # Diverging at the uniform share, as the expert-load figures: red over-used, blue avoided.
    norm = TwoSlopeNorm(vcenter=uniform, vmin=0, vmax=max(high, 2 * uniform))
    for index, (ax, (row, share)) in enumerate(zip(axes, panels, strict=True)):
        sns.heatmap(
            share, ax=ax, cmap="vlag", norm=norm, annot=True, fmt=".0f", linewidths=0.5,
            annot_kws={"fontsize": "x-small"}, cbar=index == len(panels) - 1,
            cbar_kws={"label": "share of the discipline's choices (%)"},
        )  # fmt: skip
        ax.set_title(f"L{row.depth} {row.module}: NMI {row.nmi:.3f}", fontsize="medium")
        ax.set_xlabel("expert")
    axes[0].set_yticklabels(axes[0].get_yticklabels(), rotation=0, fontfamily=plots.label_fonts())
    figure.suptitle(
        f"Expert use by discipline: the most specialised layers of {model}\n"
        f"({TASKS[task].label}; uniform share {uniform:.0f}%)"
    )
    return figure


def write_routing_figures(plan: ReportPlan, frame: pd.DataFrame, probes: dict[str, dict]) -> None:
    plots.save_figure(nmi_figure(frame), plan.figures_dir, "routing_nmi")
    plots.save_figure(usage_figure(frame, probes), plan.figures_dir, "routing_usage")
