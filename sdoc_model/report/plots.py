"""The report's figures (seaborn on matplotlib's Agg canvas; PNG at 150 dpi and PDF).

Figures are built as `matplotlib.figure.Figure` objects with an Agg canvas, never through
pyplot, so building a report changes no global backend or figure registry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from sdoc_model.eval.tasks import TASKS
from sdoc_model.report.plan import AVERAGE, Sweep
from sdoc_model.report.tables import count_text

DPI = 150
# Knobs whose values grow geometrically (powers of two) read best on a log2 axis.
LOG2_KNOBS = frozenset({"num_experts", "top_k", "queue_size"})
LOSS_LABELS = {
    "lm_loss": "LM loss",
    "lb_loss": "load-balancing loss",
    "z_loss": "router z-loss",
    "cl_loss": "contrastive loss",
}
LAYER_NAME = re.compile(r"(?:^|\.)(\d+)\.(?:.+\.)?([^.]+)$")  # "...layers.3.self_attn.q_proj"
# CMB-Exam's and CMExam's disciplines are Chinese, which DejaVu Sans lacks: labels fall back to
# the first of these that is installed (without one, they show as empty boxes).
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei")


@contextmanager
def report_style() -> Iterator[None]:
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.15):
        yield


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(folder / f"{name}.png", dpi=DPI)
    # No creation date in the PDF, so an unchanged figure gives an unchanged file.
    figure.savefig(folder / f"{name}.pdf", metadata={"CreationDate": None})


def evaluation_footer(scores: pd.DataFrame, tasks: list[str]) -> str:
    """Questions evaluated per benchmark, so a subset is never mistaken for the full test set."""
    parts = []
    for task in tasks:
        rows = scores[scores.task == task]
        evaluated = "/".join(f"{n:,}" for n in sorted(rows.n_evaluated.unique()))
        parts.append(f"{TASKS[task].label} {evaluated} of {rows.n_available.max():,}")
    subset = (scores.n_evaluated < scores.n_available).any()
    return f"{'Subset' if subset else 'Full'} evaluation, questions: " + ", ".join(parts)


def _score_series(columns: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(column, label, line style) per plotted score: benchmarks in colour, the average in black."""
    palette = sns.color_palette("colorblind")
    styles = []
    for index, (column, label) in enumerate(columns.items()):
        if column == AVERAGE:
            styles.append(
                (column, label, {"color": "black", "linewidth": 2.2, "marker": "s", "zorder": 3})
            )
        else:
            styles.append(
                (
                    column,
                    label,
                    {"color": palette[index], "linewidth": 1.3, "marker": "o", "alpha": 0.85},
                )
            )
    return styles


def sweep_figure(sweep: Sweep, wide: pd.DataFrame, columns: dict[str, str], footer: str) -> Figure:
    """Accuracy against one knob's values, a line per benchmark and the average, ±1 stderr bars."""
    figure = new_figure(6.4, 4.0)
    ax = figure.subplots()
    values = knob_positions(sweep)
    # Nudge the series sideways so overlapping error bars stay distinguishable.
    offsets = np.linspace(-1, 1, len(columns)) * 0.012 * len(columns)
    for offset, (column, label, style) in zip(offsets, _score_series(columns), strict=True):
        x = _nudged(values, offset, sweep.knob)
        ax.errorbar(
            x,
            100 * wide[f"{column}_acc"],
            yerr=100 * wide[f"{column}_stderr"],
            label=label,
            capsize=3,
            **style,
        )
    _set_knob_axis(ax, sweep, values)
    default = values[[value for value, _ in sweep.points].index(sweep.default)]
    ax.axvline(default, color="0.5", linestyle=":", linewidth=1)
    ax.annotate(
        "default",
        (default, 0),
        xycoords=("data", "axes fraction"),
        xytext=(3, 4),
        textcoords="offset points",
        color="0.4",
        fontsize="small",
    )
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, -2), min(high, 102))
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"SparseDoctor: sweep over {sweep.label}")
    figure.legend(loc="outside right upper", frameon=False)
    figure.supxlabel(footer, fontsize="x-small", color="0.35")
    return figure


def knob_positions(sweep: Sweep) -> np.ndarray:
    """Where each value sits on the x axis: itself for a number, its rank for a choice
    (cl_labels: expert, discipline)."""
    values = [value for value, _ in sweep.points]
    if all(isinstance(value, int | float) for value in values):
        return np.array(values, dtype=float)
    return np.arange(len(values), dtype=float)


def _nudged(values: np.ndarray, offset: float, knob: str) -> np.ndarray:
    if knob in LOG2_KNOBS and (values > 0).all():
        return values * 2**offset
    span = values.max() - values.min()
    return values + offset * span / 4


def _set_knob_axis(ax, sweep: Sweep, values: np.ndarray) -> None:
    if sweep.knob in LOG2_KNOBS:
        if (values > 0).all():
            ax.set_xscale("log", base=2)
        else:  # queue size 0 (no queue) has no logarithm: linear up to the smallest queue
            ax.set_xscale("symlog", base=2, linthresh=values[values > 0].min(), linscale=0.6)
    labels = [f"{v:g}" if isinstance(v, int | float) else str(v) for v, _ in sweep.points]
    ax.set_xticks(values, labels)
    ax.minorticks_off()
    ax.set_xlabel(f"{sweep.label} ({sweep.knob})")


def mean_expert_load(log: list[dict], source: str) -> pd.DataFrame:
    """Mean share of routed tokens per (layer, module, expert) over every logged step."""
    loads: dict[str, list[list[float]]] = {}
    for record in log:
        for name, load in (record.get("expert_load") or {}).items():
            loads.setdefault(name, []).append(load)
    if not loads:
        raise ValueError(
            f"{source}: no 'expert_load' in any logged step of a mixture-of-experts model"
        )
    rows = []
    for name, steps in loads.items():
        match = LAYER_NAME.search(name)
        if match is None:
            raise ValueError(
                f"{source}: cannot tell layer index and module from layer name {name!r}"
            )
        for expert, load in enumerate(np.mean(steps, axis=0)):
            rows.append(
                {"layer": int(match[1]), "module": match[2], "expert": expert, "load": load}
            )
    return pd.DataFrame(rows)


def expert_utilisation_figure(model: str, load: pd.DataFrame, steps: int) -> Figure:
    """One heatmap per adapted module type (layers x experts), on a shared colour scale."""
    modules = list(dict.fromkeys(load.module))
    experts = load.expert.nunique()
    layers = load.layer.nunique()
    panel_width, panel_height = 0.8 + 0.24 * experts, max(1.9, 0.7 + 0.15 * layers)
    # Wrap the panels into balanced rows about 12 inches wide.
    rows = math.ceil(len(modules) / max(1, int(12 // panel_width)))
    columns = math.ceil(len(modules) / rows)
    figure = new_figure(panel_width * columns + 1.3, panel_height * rows + 0.6)
    axes = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    uniform = 1 / experts
    # Diverging at the uniform share: over-used experts red, starved ones blue.
    norm = TwoSlopeNorm(vcenter=uniform, vmin=0, vmax=max(load.load.max(), 2 * uniform))
    cmap = sns.color_palette("vlag", as_cmap=True)
    layer_ids = sorted(load.layer.unique())
    every = max(1, math.ceil(layers / 32))  # at most about 32 layer labels
    for ax, module in zip(axes, modules, strict=False):
        grid = (
            load[load.module == module]
            .pivot(index="layer", columns="expert", values="load")
            .reindex(layer_ids)
        )
        mesh = ax.pcolormesh(
            grid.to_numpy(), cmap=cmap, norm=norm, edgecolors="white", linewidth=0.3
        )
        ax.set_title(module)
        ax.set_xlabel("expert")
        ax.grid(False)
    # Shared axes: setting ticks and the top-down layer order once applies to every panel.
    axes[0].set_xticks(np.arange(experts) + 0.5, range(experts))
    axes[0].set_yticks(
        np.arange(0, layers, every) + 0.5, [f"L{layer}" for layer in layer_ids[::every]]
    )
    axes[0].invert_yaxis()
    for ax in axes[len(modules) :]:
        ax.set_visible(False)
    figure.colorbar(mesh, ax=axes.tolist(), label="share of routed tokens", shrink=0.9)
    figure.suptitle(
        f"Expert load of {model}: mean over {steps} logged steps (uniform = 1/{experts})"
    )
    return figure


def training_curves_figure(logs: dict[str, list[dict]]) -> Figure:
    """LM loss per variant, and one panel per auxiliary loss that any variant logged."""
    frames = {
        model: pd.DataFrame(log).set_index("step").sort_index() for model, log in logs.items()
    }
    losses = [
        loss
        for loss in LOSS_LABELS
        if any(loss in frame and frame[loss].notna().any() for frame in frames.values())
    ]
    figure = new_figure(max(4.6, 3.3 * len(losses)), 3.6)
    axes = figure.subplots(1, len(losses), sharex=True, squeeze=False).ravel()
    colours = dict(zip(frames, sns.color_palette("colorblind", len(frames)), strict=True))
    for ax, loss in zip(axes, losses, strict=True):
        for model, frame in frames.items():
            if loss not in frame or frame[loss].isna().all():
                continue
            raw = frame[loss].astype(float)
            ax.plot(raw.index, raw, color=colours[model], alpha=0.25, linewidth=0.8)
            ax.plot(raw.index, _smoothed(raw), color=colours[model], linewidth=1.6, label=model)
        ax.set_title(LOSS_LABELS[loss])
        ax.set_xlabel("optimizer step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="outside lower center", ncols=min(len(labels), 5), frameon=False
    )
    figure.suptitle("Training losses (line: moving average; faint: every logged step)")
    return figure


def _smoothed(series: pd.Series) -> pd.Series:
    window = 2 * (len(series) // 16) + 1  # odd, so the centred average does not shift the curve
    return series.rolling(window, center=True, min_periods=1).mean()


def accuracy_vs_params_figure(
    points: pd.DataFrame, base_average: float | None, footer: str
) -> Figure:
    """Average accuracy against trainable parameters; columns: label, params, acc, stderr, sweep."""
    figure = new_figure(6.4, 4.2)
    ax = figure.subplots()
    for is_sweep, group in points.groupby("sweep"):
        ax.errorbar(
            group.params,
            100 * group.acc,
            yerr=100 * group.stderr,
            fmt="o",
            capsize=3,
            color="0.45" if is_sweep else "C0",
            mfc="white" if is_sweep else None,
            label="sweep points" if is_sweep else "variants",
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: count_text(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    # Room on the right for the labels.
    ax.set_xlim(points.params.min() / 1.5, points.params.max() * 3)
    if base_average is not None:
        ax.axhline(
            100 * base_average, color="0.5", linestyle="--", linewidth=1, label="base (no training)"
        )
    _label_points(ax, points)
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("average accuracy (%)")
    ax.set_title("Accuracy against trainable parameters")
    ax.legend(loc="best", fontsize="small")
    figure.supxlabel(footer, fontsize="x-small", color="0.35")
    return figure


def _label_points(ax, points: pd.DataFrame) -> None:
    """Label each point to its right; labels of points sharing a parameter count are spread
    vertically, centred on their points, so none overlap."""
    low, high = ax.get_ylim()
    gap = 0.065 * (high - low)
    ordered = points.assign(y=100 * points.acc).sort_values("params")
    column_of_point = (np.log10(ordered.params).diff().abs() > 0.05).cumsum()
    for _, column in ordered.groupby(column_of_point):
        column = column.sort_values("y")  # labels in the order of their points: no crossed leaders
        label_y = np.maximum.accumulate(
            column.y.to_numpy() - gap * np.arange(len(column))
        ) + gap * np.arange(len(column))
        label_y += column.y.mean() - label_y.mean()
        for row, y in zip(column.itertuples(), label_y, strict=True):
            ax.annotate(
                row.label,
                (row.params, row.y),
                xytext=(row.params * 1.15, y),
                fontsize="small",
                va="center",
                arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6},
            )


def label_fonts() -> list[str]:
    """Font families for discipline labels: DejaVu Sans, then an installed CJK font."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in CJK_FONTS if name in installed)]


def discipline_figure(accuracy: pd.DataFrame) -> Figure:
    """Heatmap of accuracy (%): models (rows) x disciplines (columns), each cell annotated."""
    models, disciplines = accuracy.shape
    figure = new_figure(max(4.6, 2.2 + 0.6 * disciplines), max(2.4, 1.9 + 0.38 * models))
    ax = figure.subplots()
    if not disciplines:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No evaluated task has discipline labels", ha="center", va="center")
        return figure
    sns.heatmap(
        accuracy, ax=ax, vmin=0, vmax=100, cmap="viridis", annot=True, fmt=".0f",
        linewidths=0.5, cbar_kws={"label": "accuracy (%)"},
    )  # fmt: skip
    ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right", fontfamily=label_fonts())
    ax.set(xlabel="", ylabel="")
    ax.set_title("Accuracy by discipline (%)")
    return figure
