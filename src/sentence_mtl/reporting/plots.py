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


def series_styles(names) -> dict[str, dict]:
    """A fixed colour, marker and line style per series, by order of first appearance, so one
    strategy looks the same in every panel and every figure drawn from the same records."""
    names = list(dict.fromkeys(names))
    return {name: {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[(i // len(PALETTE)) % len(MARKERS)],
                   "ls": "-" if i < len(PALETTE) else "--"} for i, name in enumerate(names)}


def legend(fig, axes, order) -> None:
    """Few series: a legend in each panel. Many: one legend for the figure, below the panels,
    where it cannot cover data."""
    if len(order) <= LEGEND_INSIDE_UP_TO:
        for ax in axes:
            ax.legend(fontsize=8)
        return
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = [name for name in order if name in handles]
    fig.legend([handles[n] for n in labels], labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(len(labels), 5), fontsize=8, frameon=False)


def save(fig, name: str | None, figures_dir: Path | None):
    if name and figures_dir is not None:
        from ..io import atomic_path

        with atomic_path(Path(figures_dir) / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png")
    return fig


def bar_chart(labels, values, ylabel: str, title: str, reference: tuple[str, float] | None = None,
              errors=None, name=None, figures_dir=None):
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    bars = ax.bar(labels, values, yerr=errors, color=PALETTE[: len(labels)], capsize=4)
    # values inside the bars' tops and the reference in a legend, so neither collides with the line
    ax.bar_label(bars, fmt="%.3f", label_type="edge", padding=-12, fontsize=8, color="white")
    if reference:
        ax.axhline(reference[1], ls="--", color="k", lw=1, label=reference[0])
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_ylim(0, 1.18 * max([*values, reference[1] if reference else 0]))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right")
    return save(fig, name, figures_dir)


def learning_curves(records: list[dict], tasks: list[str], full_label: str = "all",
                    references: dict[str, list[tuple[str, int, float]]] | None = None,
                    name=None, figures_dir=None):
    """Metric against examples per class, one line per strategy, band = mean +/- std over seeds;
    published results as black stars at their data size."""
    df = pd.DataFrame(records)
    styles = series_styles(df.strategy)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = df[df.task == task]
        sizes = sorted({k for k in sub.n_per_class.dropna()})
        has_full = sub.n_per_class.isna().any()
        positions = {k: i for i, k in enumerate(sizes)}
        for strategy, rows in sub.groupby("strategy", sort=False):
            key = rows.n_per_class.map(lambda k: len(sizes) if pd.isna(k) else positions[k])
            stats = rows.assign(x=key).groupby("x").value.agg(["mean", "std"]).fillna(0)
            ax.plot(stats.index, stats["mean"], label=strategy, **styles[strategy])
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                            color=styles[strategy]["color"], alpha=0.15)
        for label, k, value in (references or {}).get(task, []):  # published points
            x = len(sizes) if k is None else positions.get(k)
            if x is not None:
                ax.plot([x], [value], marker="*", color="k", ms=9, ls="none")
                ax.annotate(label, (x, value), textcoords="offset points", xytext=(5, -3), fontsize=7)
        ticks = [str(int(k)) for k in sizes] + ([full_label] if has_full else [])
        ax.set_xticks(range(len(ticks)), ticks)
        ax.set_xlabel("training examples per class")
        ax.set_ylabel(sub.metric.iloc[0] if len(sub) else "")
        ax.set_title(task)
    fig.tight_layout()
    legend(fig, axes[0], styles)
    return save(fig, name, figures_dir)


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
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, name, figures_dir)


def grouped_bars(records: list[dict], strategies: list[str], tasks: list[str], title: str,
                 name=None, figures_dir=None):
    """Mean +/- std over seeds of each strategy's test metric, one panel per task, seeds as dots."""
    df = pd.DataFrame(records)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks) + 1, 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = df[(df.task == task) & df.strategy.isin(strategies)]
        stats = sub.groupby("strategy").value.agg(["mean", "std"]).reindex(strategies)
        x = np.arange(len(strategies))
        ax.bar(x, stats["mean"], yerr=stats["std"].fillna(0), capsize=4,
               color=[PALETTE[i % len(PALETTE)] for i in range(len(strategies))], alpha=0.8)
        for i, strategy in enumerate(strategies):
            values = sub[sub.strategy == strategy].value
            ax.plot([i] * len(values), values, "k.", ms=4)
        lo = np.nanmin(stats["mean"] - stats["std"].fillna(0))
        hi = np.nanmax(stats["mean"] + stats["std"].fillna(0))
        ax.set_ylim(max(0, lo - 0.05), min(1, hi + 0.03))
        ax.set_xticks(x, strategies, rotation=30, ha="right", fontsize=8)
        ax.set_title(task)
        ax.set_ylabel(sub.metric.iloc[0] if len(sub) else "")
    fig.suptitle(title)
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
        ax.set_xlabel("training seconds (2 CPU cores, log scale)")
        ax.set_ylabel(sub.metric.iloc[0] if len(sub) else "")
        ax.set_title(f"{task}, {n_per_class} examples per class")
    fig.suptitle(title)
    fig.tight_layout()
    legend(fig, axes[0], [s for s in styles if s in set(df.strategy)])
    return save(fig, name, figures_dir)


def forgetting_chart(table: pd.DataFrame, title: str, name=None, figures_dir=None):
    """Topic metric after stage 1 and after stage 2 per sequential variant (mean +/- std over
    seeds); the drop between the two bars is what the topic task forgot."""
    stats = table.groupby("strategy", sort=False)[["after_topic", "after_sentiment", "forgetting"]].agg(["mean", "std"])
    stats = stats.fillna(0)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    x = np.arange(len(stats))
    for offset, stage, label in ((-0.2, "after_topic", "topic after stage 1 (topic)"),
                                 (0.2, "after_sentiment", "topic after stage 2 (+ sentiment)")):
        ax.bar(x + offset, stats[(stage, "mean")], 0.4, yerr=stats[(stage, "std")], capsize=4, label=label,
               color=PALETTE[0] if offset < 0 else PALETTE[1], alpha=0.85)
    for i, (mean, std) in enumerate(zip(stats[("forgetting", "mean")], stats[("forgetting", "std")])):
        ax.annotate(f"forgot {100 * mean:.1f} ± {100 * std:.1f} pts", (i, stats[("after_topic", "mean")].iloc[i]),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.set_xticks(x, [s.replace("sequential_", "") for s in stats.index])
    ax.set_ylabel("topic accuracy (test subset)")
    low = float(np.nanmin(stats[("after_sentiment", "mean")] - stats[("after_sentiment", "std")]))
    ax.set_ylim(max(0, low - 0.1), 1.0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    return save(fig, name, figures_dir)
