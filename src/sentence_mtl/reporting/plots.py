"""One figure style for the whole repository. Every function returns the figure and, given a
name, saves it as ``figures/<name>.png`` (``runs/<profile>/figures`` outside ``standard``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

PALETTE = ["#1b6ca8", "#e4572e", "#29a36a", "#8f5db7", "#f3a712", "#5c5c5c", "#c2185b", "#00838f"]
plt.rcParams.update({
    "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight", "font.size": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
})


MARKERS = ["o", "s", "^", "D"]
LEGEND_INSIDE_UP_TO = 6  # series; with more, one legend for all panels goes below the figure

# One colour per strategy in every figure of the repository (tab20, paired shades for siblings).
_TAB20 = [matplotlib.colormaps["tab20"](i) for i in range(20)]
STRATEGY_COLOURS = {name: _TAB20[i] for name, i in {
    "nearest_centroid": 0, "label_prior": 1, "frozen_backbone": 2, "self_training": 3, "top1_unfrozen": 4,
    "top2_unfrozen": 5, "full_finetune": 6, "lp_ft": 8, "llrd_0.95": 18, "llrd_2.6": 19, "gradual_unfreezing": 10,
    "lora": 16, "setfit": 14, "zero_shot": 12, "majority_class": 15, "sequential_frozen_backbone": 13,
    "sequential_trainable_backbone": 7, "sequential_lora": 17,
    "frozen_minilm_logreg": 2, "tfidf_logreg": 15, "tfidf": 15, "bm25": 15, "pretrained": 0, "finetuned_mnrl": 6,
    "hybrid_bm25_pretrained": 1, "hybrid_bm25_finetuned": 9, "rrf_bm25_finetuned": 11,
}.items()}
STRATEGY_COLOURS.update({name: matplotlib.colors.to_rgba(hex_) for name, hex_ in {
    "anchored_contrastive": "#b0005a",  # ours against the peer: deep magenta
    "anchored_self_training": "#e87fb7",  # the same with unlabeled texts: its light shade
    "finetuned_bm25_negatives": "#7a5c00",  # retrieval with BM25 hard negatives: dark gold
    "hybrid_bm25_negatives": "#d4a017",  # its hybrid with BM25: gold
    "rrf_bm25_negatives": "#e8cf7a",  # its reciprocal-rank fusion: pale gold
}.items()})
STRATEGY_COLOURS.update({name: PALETTE[i] for i, name in enumerate([  # notebook 04's configurations
    "proportional+equal", "round_robin+equal", "temperature+equal", "annealed+equal", "proportional+static",
    "proportional+uncertainty", "single_task_topic", "single_task_sentiment"])})


def percent_axis(ax, axis: str = "y") -> None:
    """Tick labels in percent for an axis holding fractions (0.82 -> 82%)."""
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=None))


def series_styles(names) -> dict[str, dict]:
    """A colour, marker and line style per series: a strategy's fixed colour (``STRATEGY_COLOURS``)
    when it has one, else one by order of first appearance; the same in every panel and figure."""
    names = list(dict.fromkeys(names))
    return {name: {"color": STRATEGY_COLOURS.get(name, PALETTE[i % len(PALETTE)]),
                   "marker": MARKERS[i % len(MARKERS)], "ls": "-"} for i, name in enumerate(names)}


def legend(fig, axes, order) -> None:
    """Few series: a legend in each panel. Many: one legend for the figure, below the panels,
    where it cannot cover data."""
    if len(order) <= LEGEND_INSIDE_UP_TO:
        for ax in axes:
            ax.legend(fontsize=8)
        return
    _figure_legend(fig, axes, order)


def save(fig, name: str | None, figures_dir: Path | None):
    if name and figures_dir is not None:
        from ..io import atomic_path

        with atomic_path(Path(figures_dir) / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png")
    return fig


def bar_chart(labels, values, ylabel: str, title: str, reference: tuple[str, float] | None = None,
              errors=None, scale: float = 100.0, fmt: str = "%.1f", name=None, figures_dir=None,
              horizontal: bool = False):
    """Bars from zero; ``scale`` turns fractions into the unit of ``ylabel`` (100: percent points).
    ``horizontal``: one row per label, top to bottom, for many bars or long names."""
    values = [scale * v for v in values]
    errors = None if errors is None else [scale * e for e in errors]
    colours = [STRATEGY_COLOURS.get(label, PALETTE[i % len(PALETTE)]) for i, label in enumerate(labels)]
    top = 1.18 * max([*values, scale * reference[1] if reference else 0])
    if horizontal:
        fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.32 * len(labels)))
        bars = ax.barh(labels, values, xerr=errors, color=colours, capsize=3)
        ax.bar_label(bars, fmt=fmt, padding=8, fontsize=8)  # beside the bar (past its error cap): any colour reads
        ax.set_ylim(len(labels) - 0.5, -1.4)  # the first label on top, as in a table; a free row above it
        if reference:  # named in that free row, where no bar or value can cover it
            ax.axvline(scale * reference[1], ls="--", color="k", lw=1)
            ax.text(scale * reference[1], -0.95, f" {reference[0]}", fontsize=8, va="center", ha="left")
        ax.set_xlim(0, top)
        ax.set_xlabel(ylabel)
    else:
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        bars = ax.bar(labels, values, yerr=errors, color=colours, capsize=4)
        # values inside the bars' tops and the reference in a legend, so neither collides with the line
        ax.bar_label(bars, fmt=fmt, label_type="edge", padding=-12, fontsize=8, color="white")
        if reference:
            ax.axhline(scale * reference[1], ls="--", color="k", lw=1, label=reference[0])
            ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
        ax.set_ylim(0, top)
        ax.set_ylabel(ylabel)
        plt.setp(ax.get_xticklabels(), rotation=25, ha="right")
    ax.set_title(title)
    return save(fig, name, figures_dir)


def learning_curves(records: list[dict], tasks: list[str], full_label: str = "all",
                    references: dict[str, list[tuple[str, int, float]]] | None = None,
                    families: dict[str, list[str]] | None = None, name=None, figures_dir=None):
    """Metric (percent) against examples per class: one column per task, one row per strategy
    family (``families``: title -> strategies; default one row), band = mean +/- std over seeds;
    published results as black stars in the last row. A column shares its y axis, so the
    families of one task compare by eye."""
    df = pd.DataFrame(records)
    styles = series_styles(df.strategy)
    families = families or {"": list(styles)}
    fig, axes = plt.subplots(len(families), len(tasks), figsize=(3.7 * len(tasks) + 0.4, 2.3 * len(families) + 0.6),
                             squeeze=False, sharey="col", sharex="col")
    for col, task in enumerate(tasks):
        sub = df[df.task == task]
        sizes = sorted({k for k in sub.n_per_class.dropna()})
        has_full = sub.n_per_class.isna().any()
        positions = {k: i for i, k in enumerate(sizes)}
        ticks = [str(int(k)) for k in sizes] + ([full_label] if has_full else [])
        metric = sub.metric.iloc[0].replace("_", " ") if len(sub) else ""
        for row, (family, members) in enumerate(families.items()):
            ax = axes[row][col]
            for strategy, rows in sub[sub.strategy.isin(members)].groupby("strategy", sort=False):
                key = rows.n_per_class.map(lambda k: len(sizes) if pd.isna(k) else positions[k])
                stats = rows.assign(x=key).groupby("x").value.agg(["mean", "std"]).fillna(0)
                ax.plot(stats.index, stats["mean"], label=strategy, ms=4, **styles[strategy])
                ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                color=styles[strategy]["color"], alpha=0.15)
            shown = [(label, k, value) for label, k, value in (references or {}).get(task, [])
                     if k is None and has_full or k in positions]
            if row == len(families) - 1 and shown:  # published points, named in one box under the curves
                for label, k, value in shown:
                    ax.plot([len(sizes) if k is None else positions[k]], [value], marker="*", color="k", ms=8, ls="none")
                ax.text(0.98, 0.03, "★ published:\n" + "\n".join(
                    f"{label} ({'all' if k is None else k}/class)" for label, k, _ in shown), transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=6.5, bbox={"facecolor": "white", "edgecolor": "0.8", "pad": 2})
            ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
            ax.set_title(f"{task}: {family}" if family else task, fontsize=9)
            percent_axis(ax)
            ax.tick_params(axis="y", labelsize=8)
            if col == 0 or len(families) > 1:
                ax.set_ylabel(metric, fontsize=8)
        axes[-1][col].set_xlabel("labelled examples per class")
    fig.tight_layout()
    legend(fig, axes.ravel(), list(styles)) if len(families) == 1 else _figure_legend(fig, axes.ravel(), list(styles))
    return save(fig, name, figures_dir)


def _figure_legend(fig, axes, order) -> None:
    """One legend for every panel, below the figure, where it covers no data."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = [n for n in order if n in handles]
    fig.legend([handles[n] for n in labels], labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(len(labels), 4), fontsize=8, frameon=False)


def projections(points: dict[str, np.ndarray], labels: np.ndarray, label_names, title: str,
                name=None, figures_dir=None):
    """Side-by-side 2-D scatter plots (e.g. PCA, t-SNE, UMAP) coloured by class."""
    fig, axes = plt.subplots(1, len(points), figsize=(4.6 * len(points), 4.2), squeeze=False)
    for ax, (method, xy) in zip(axes[0], points.items()):
        for c, label in enumerate(label_names):
            mask = labels == c
            ax.scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.6, label=label, color=PALETTE[c])
        ax.set_title(method)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[0][0].legend(markerscale=3, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, name, figures_dir)


def similarity_heatmap(matrix: np.ndarray, labels: list[str], title: str, name=None, figures_dir=None):
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 0.6 + 0.55 * len(labels)))
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0, matrix.min()), vmax=1)
    short = [label if len(label) < 38 else label[:35] + "..." for label in labels]
    ax.set_xticks(range(len(labels)), range(1, len(labels) + 1))
    ax.set_yticks(range(len(labels)), [f"{i + 1}. {s}" for i, s in enumerate(short)], fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] < 0.6 else "black")
    ax.grid(False)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    return save(fig, name, figures_dir)


def training_curves(log: list[dict], title: str, name=None, figures_dir=None):
    """Left: training loss per task (smoothed); right: validation benchmark metric per task."""
    steps = [e for e in log if e["type"] == "step"]
    evals = [e for e in log if e["type"] == "eval"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.6))
    tasks = sorted({t for e in steps for t in e["task_losses"]})
    for i, task in enumerate(tasks):
        xs = [e["step"] for e in steps if task in e["task_losses"]]
        ys = pd.Series([e["task_losses"][task] for e in steps if task in e["task_losses"]])
        left.plot(xs, ys, alpha=0.25, color=PALETTE[i])
        left.plot(xs, ys.rolling(5, min_periods=1).mean(), color=PALETTE[i], label=task)
        right.plot([e["step"] for e in evals], [e["tasks"][task]["benchmark_value"] for e in evals],
                   marker="o", color=PALETTE[i], label=f"{task} ({evals[0]['tasks'][task]['benchmark_metric']})")
    right.plot([e["step"] for e in evals], [e["mean_metric"] for e in evals], ls="--", color="k", label="mean")
    left.set(xlabel="step", ylabel="cross-entropy", title="training loss")
    right.set(xlabel="step", ylabel="validation metric", title="validation")
    percent_axis(right)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, name, figures_dir)


def interval_dots(records: list[dict], strategies: list[str], tasks: list[str], title: str,
                  name=None, figures_dir=None, labels: dict[str, str] | None = None,
                  ringed: dict | None = None, rows_by: str | None = None):
    """Each strategy's test metric, one panel per task: the mean over seeds (dot), its 95% interval
    over seeds and test items (line, ``analysis.interval``) and each seed (small grey dots). Dots,
    not bars: the axis can zoom on the differences without a truncated bar misleading the eye.
    ``labels``: tick text per strategy (default: its id); ``rows_by``: a record field (such as
    ``n_per_class``) that repeats the task panels, side by side, for each of its values;
    ``ringed``: the strategy circled, by task, or by (task, value) with ``rows_by``."""
    from ..experiments.analysis import interval

    df = pd.DataFrame(records)
    styles = series_styles(strategies)
    values = sorted(df[rows_by].unique()) if rows_by else [None]
    fig, grid = plt.subplots(1, len(tasks) * len(values), squeeze=False, sharey=True,
                             figsize=(3.0 * len(tasks) * len(values) + 1.8, 0.34 * len(strategies) + 1.4))
    axes = [grid[0][i * len(tasks):(i + 1) * len(tasks)] for i in range(len(values))]
    for row, value in zip(axes, values):
        part = df if value is None else df[df[rows_by] == value]
        ring = ringed or {}
        ring = ring if value is None else {t: s for (t, v), s in ring.items() if v == value}
        for ax, task in zip(row, tasks):
            sub = part[(part.task == task) & part.strategy.isin(strategies)]
            for y, strategy in enumerate(strategies):
                runs = sub[sub.strategy == strategy]
                if runs.empty:
                    continue
                mean, low, high = interval(runs.value.tolist(), int(runs.n_test.iloc[0]))
                ax.plot([low, high], [y, y], color=styles[strategy]["color"], lw=2.5, solid_capstyle="butt")
                ax.plot([mean], [y], "o", color=styles[strategy]["color"], ms=7)
                ax.plot(runs.value, [y] * len(runs), ".", color="0.35", ms=4)
                if ring.get(task) == strategy:
                    ax.plot([mean], [y], "o", mfc="none", mec="black", ms=14, mew=1.5)
            ax.set_yticks(range(len(strategies)), [(labels or {}).get(s, s) for s in strategies], fontsize=8)
            percent_axis(ax, "x")
            ax.set_xlabel(sub.metric.iloc[0].replace("_", " ") if len(sub) else "")
            ax.set_title(task if value is None else f"{task}, {value} per class", fontsize=10)
    axes[0][0].invert_yaxis()  # the first strategy on top (the panels share the axis: invert once)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, name, figures_dir)


def paired_differences(rows: list[dict], strategy: str, title: str, name=None, figures_dir=None):
    """``a`` minus ``b`` in points, one panel per task and one line per size: the mean paired
    difference (dot) and its 95% interval (``analysis.paired``); right of the zero line is ahead,
    an interval across it is a tie. ``rows``: ``{"task", "label", "mean", "low", "high"}`` (fractions)."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    colour = series_styles([strategy])[strategy]["color"]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.0 * len(tasks) + 1.2, 0.5 * len(labels) + 1.5),
                             squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in rows if r["task"] == task):
            y = labels.index(r["label"])
            ax.plot([100 * r["low"], 100 * r["high"]], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
            ax.plot([100 * r["mean"]], [y], "o", color=colour, ms=7)
        ax.axvline(0, color="0.3", lw=1, ls="--")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("difference (percentage points)")
        ax.set_title(task)
    axes[0][0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, name, figures_dir)


def confusion_matrices(matrices: dict[str, tuple[np.ndarray, tuple[str, ...]]], title: str,
                       name=None, figures_dir=None):
    """Row-normalised confusion matrices (rows: true class), counts in the cells."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.4 * len(matrices), 3.9), squeeze=False)
    for ax, (task, (matrix, labels)) in zip(axes[0], matrices.items()):
        matrix = np.asarray(matrix)
        rates = matrix / matrix.sum(1, keepdims=True).clip(min=1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{matrix[i, j]}\n{rates[i, j]:.0%}", ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(task)
        ax.grid(False)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, name, figures_dir)


def cost_vs_quality(records: list[dict], tasks: list[str], n_per_class: int, title: str,
                    name=None, figures_dir=None):
    """Training seconds (log scale) against the test metric at one data size, one point per
    strategy (mean over seeds, bars = std), one panel per task."""
    styles = series_styles(r["strategy"] for r in records)  # the same look as in learning_curves
    df = pd.DataFrame([r for r in records if r.get("n_per_class") == n_per_class and not r.get("stage")])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.6 * len(tasks), 4.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = df[df.task == task]
        stats = sub.groupby("strategy", sort=False).agg(
            seconds=("train_seconds", "mean"), mean=("value", "mean"), std=("value", "std")).fillna(0)
        for strategy, row in stats.iterrows():
            style = styles[strategy]
            ax.errorbar(max(row.seconds, 1e-3), row["mean"], yerr=row["std"], fmt=style["marker"], capsize=3,
                        color=style["color"], ms=7, label=strategy)
        ax.set_xscale("log")
        percent_axis(ax)
        ax.set_xlabel("training seconds (2 CPU cores, log scale)")
        ax.set_ylabel(sub.metric.iloc[0].replace("_", " ") if len(sub) else "")
        ax.set_title(f"{task}, {n_per_class} examples per class")
    fig.suptitle(title)
    fig.tight_layout()
    legend(fig, axes[0], [s for s in styles if s in set(df.strategy)])
    return save(fig, name, figures_dir)
