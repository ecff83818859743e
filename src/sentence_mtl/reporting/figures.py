"""``make figures``: the figures drawn from result records, redrawn from ``results/`` alone.

The notebooks call the same functions on the records they hold, so a figure looks the same
whichever drew it; no experiment is run again. One style for all: ``plots``.

    python -m sentence_mtl.reporting.figures [--results results] [--figures figures]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..config import REPO_ROOT
from ..experiments import analysis
from ..experiments.analysis import forgetting, interval
from . import plots

CLASSIFICATION = ("topic", "sentiment")
# At most five lines a panel, each a distinct hue: the strategies of notebook 03 by what they train.
LEARNING_PANELS = {
    "frozen encoder": ["nearest_centroid", "label_prior", "frozen_backbone", "self_training"],
    "part of the encoder trained": ["top1_unfrozen", "top2_unfrozen", "lora", "gradual_unfreezing"],
    "whole encoder trained": ["full_finetune", "lp_ft", "llrd_0.95", "llrd_2.6"],
    "contrastive recipes and SetFit": [
        "setfit",
        "anchored_contrastive",
        "anchored_self_training",
        "frozen_backbone",
    ],
}
PANEL_COLOURS = plots.PALETTE[:5]


def compared(records: list[dict]) -> list[dict]:
    """Notebook 03's strategies on the two classification tasks, the floors and stages left out."""
    return [
        r
        for r in records
        if r["task"] in CLASSIFICATION
        and not r.get("stage")
        and r["strategy"] not in ("zero_shot", "majority_class")
    ]


def _metric(records: list[dict], task: str) -> str:
    return next(r["metric"] for r in records if r["task"] == task).replace("_", " ")


def learning_curves(records: list[dict], figures_dir: Path | None = None):
    """Test metric against labelled examples per class: a row per family of strategies, a column per
    task, mean over seeds with a band of one std; hues distinct within a panel, legend per row."""
    df = pd.DataFrame(compared(records))
    sizes = sorted({int(k) for k in df.n_per_class.dropna()})
    ticks = [str(k) for k in sizes] + ["all"]
    fig, axes = plots.plt.subplots(
        len(LEARNING_PANELS),
        2,
        figsize=(9.6, 2.4 * len(LEARNING_PANELS) + 0.4),
        sharey="col",
        sharex=True,
        squeeze=False,
    )
    for row, (family, members) in enumerate(LEARNING_PANELS.items()):
        for col, task in enumerate(CLASSIFICATION):
            ax = axes[row][col]
            for i, strategy in enumerate(members):
                runs = df[(df.task == task) & (df.strategy == strategy)]
                if runs.empty:
                    continue
                x = runs.n_per_class.map(lambda k: len(sizes) if pd.isna(k) else sizes.index(int(k)))
                stats = runs.assign(x=x).groupby("x").value.agg(["mean", "std"]).fillna(0)
                reference = family.startswith("contrastive") and strategy == "frozen_backbone"
                style = (
                    {"color": "0.55", "ls": "--", "marker": None}
                    if reference
                    else {
                        "color": PANEL_COLOURS[i],
                        "ls": "-",
                        "marker": plots.MARKERS[i % len(plots.MARKERS)],
                    }
                )
                ax.plot(
                    stats.index,
                    stats["mean"],
                    ms=4,
                    label=strategy + (" (reference)" if reference else ""),
                    **style,
                )
                if not reference:
                    ax.fill_between(
                        stats.index,
                        stats["mean"] - stats["std"],
                        stats["mean"] + stats["std"],
                        color=style["color"],
                        alpha=0.12,
                    )
            ax.set_title(f"{task}: {family}", fontsize=9)
            ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
            plots.percent_axis(ax)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_ylabel(_metric(records, task), fontsize=8)
        axes[row][1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("labelled examples per class")
    fig.tight_layout()
    return plots.save(fig, "03_learning_curves", figures_dir)


def forgetting_chart(records: list[dict], figures_dir: Path | None = None):
    """Left: topic accuracy after stage 1 and after stage 2 (topic head frozen), 95% intervals over
    seeds. Right: the change per seed pair, in points, against zero. Both axes fit their data."""
    table = forgetting(records)
    variants = list(dict.fromkeys(table.strategy))
    fig, (left, right) = plots.plt.subplots(
        1, 2, figsize=(8.4, 0.7 * len(variants) + 1.6), sharey=True, gridspec_kw={"width_ratios": [1.3, 1]}
    )
    for y, variant in enumerate(variants):
        rows = table[table.strategy == variant]
        for offset, column, colour, label in (
            (-0.12, "after_topic", plots.PALETTE[0], "after stage 1 (topic)"),
            (0.12, "after_sentiment", plots.PALETTE[1], "after stage 2 (+ sentiment)"),
        ):
            mean, low, high = interval(rows[column].tolist())
            left.plot([low, high], [y + offset] * 2, color=colour, lw=2.5, label=label if y == 0 else None)
            left.plot([mean], [y + offset], "o", color=colour, ms=6)
        mean, low, high = interval((100 * (rows.after_sentiment - rows.after_topic)).tolist())
        right.plot([low, high], [y, y], color="0.3", lw=2.5)
        right.plot([mean], [y], "o", color="0.3", ms=6)
    right.axvline(0, color="0.3", lw=1, ls="--")
    left.set_yticks(
        range(len(variants)), [v.replace("sequential_", "stage 2: ") for v in variants], fontsize=8
    )
    left.invert_yaxis()
    plots.percent_axis(left, "x")
    left.set_xlabel("topic accuracy (test subset)")
    right.set_xlabel("change in topic accuracy (points)")
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.6, -0.28), ncol=2, frameon=False)
    seeds = table.groupby("strategy").size().min()
    fig.suptitle(
        f"Topic accuracy before and after a sentiment stage with the topic head frozen ({seeds} seeds)",
        fontsize=10,
    )
    fig.tight_layout()
    return plots.save(fig, "03_forgetting", figures_dir)


def sampling_weighting(records: list[dict], figures_dir: Path | None = None):
    """Notebook 04's sampling and weighting schemes: mean, 95% interval and seeds, per task."""
    schemes = [s for s in dict.fromkeys(r["strategy"] for r in records) if not s.startswith("single_task")]
    runs = [r for r in records if r["strategy"] in schemes]
    n = {t: next(r["n_test"] for r in runs if r["task"] == t) for t in CLASSIFICATION}
    fig = plots.interval_dots(
        runs,
        schemes,
        list(CLASSIFICATION),
        f"Test metric by task sampling + loss weighting: mean, 95% interval and seeds "
        f"(test subsets of {n['topic']} / {n['sentiment']} items)",
    )
    return plots.save(_sparse_ticks(fig), "04_sampling_weighting", figures_dir)


def multitask_vs_single(records: list[dict], figures_dir: Path | None = None):
    names = ["proportional+equal", "single_task_topic", "single_task_sentiment"]
    fig = plots.interval_dots(
        [r for r in records if r["strategy"] in names],
        names,
        list(CLASSIFICATION),
        "Multi-task against single-task models given the same steps: mean and 95% interval",
    )
    return plots.save(_sparse_ticks(fig), "04_multitask_vs_single", figures_dir)


def loop_headline_scores(records: list[dict], figures_dir: Path | None = None):
    """Notebook 04's main contrast on the full test sets: validation's pick, the base configuration
    and each task's single-task model (mean, 95% interval over seeds and items, each seed). None
    before any headline run."""
    from ..experiments.grids import LOOP_HEADLINES

    grid = LOOP_HEADLINES["standard"]
    names = [grid.chosen, grid.base, "single_task_topic", "single_task_sentiment"]
    runs = [r for r in records if r.get("headline") and r["strategy"] in names]
    if not runs:
        return None
    seeds = max(len({r["seed"] for r in runs if r["strategy"] == s}) for s in names)
    fig = plots.interval_dots(runs, names, list(CLASSIFICATION),
                              f"{seeds} seeds, full test sets: validation's pick, the base configuration "
                              "and single-task models")
    return plots.save(_sparse_ticks(fig), "04_headline_scores", figures_dir)


def _sparse_ticks(fig):
    """At most five whole-percent ticks per axis, so that the labels never collide."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(5, steps=[1, 2, 5, 10]))  # no 2.5: 12.5% would read 12%
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    return fig


def scifact_ndcg(records: list[dict], figures_dir: Path | None = None):
    """SciFact test NDCG@10 per system: mean over seeds (dot) and its 95% interval over seeds (line),
    on an axis zoomed to the range of the systems; BM25's published score dashed."""
    from ..references import value as published

    ndcg = pd.DataFrame([r for r in records if r["metric"] == "ndcg@10"])
    order = list(dict.fromkeys(ndcg.strategy))
    fig, ax = plots.plt.subplots(figsize=(6.8, 0.36 * len(order) + 1.3))
    for y, strategy in enumerate(order):
        values = ndcg[ndcg.strategy == strategy].value.tolist()
        mean, low, high = (100 * v for v in interval(values))
        colour = plots.STRATEGY_COLOURS.get(strategy, plots.PALETTE[y % len(plots.PALETTE)])
        ax.plot([low, high], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot([mean], [y], "o", color=colour, ms=6)
        ax.annotate(f"{mean:.1f}", (high, y), textcoords="offset points", xytext=(5, -3), fontsize=7)
    reference = 100 * published("scifact_bm25s_ndcg10")
    ax.axvline(reference, ls="--", color="k", lw=1, label="BM25S, published")
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.invert_yaxis()
    low, high = ax.get_xlim()
    ax.set_xlim(low, high + 0.06 * (high - low))
    ax.set_xlabel("NDCG@10 (%), zoomed axis; lines: 95% interval over seeds")
    ax.set_title(f"SciFact test, {ndcg.n_test.iloc[0]} queries", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return plots.save(fig, "05_scifact_ndcg", figures_dir)


def redraw(results: Path = REPO_ROOT / "results", figures_dir: Path = REPO_ROOT / "figures") -> list[str]:
    """Every figure whose records are in ``results``; the names drawn."""

    def load(stem):
        path = results / f"{stem}.json"
        records = json.loads(path.read_text()) if path.is_file() else None
        return analysis.without_headline(records) if stem in analysis.HEADLINE_STEMS else records

    drawn = []
    for stem, draw in (
        ("03_freezing_strategies", (learning_curves, forgetting_chart, _cost_vs_quality)),
        ("04_training_loop", (sampling_weighting, multitask_vs_single)),
        ("05_retrieval_finetuning", (scifact_ndcg,)),
        ("robustness", (_wise_ft,)),
    ):
        if (records := load(stem)) is not None:
            for function in draw:
                plots.plt.close(function(records, figures_dir))
                drawn.append(function.__name__.lstrip("_"))
    if (fig := headline_scores(results, figures_dir)) is not None:
        plots.plt.close(fig)
        drawn.append("headline_scores")
    from .claims_headline import headline_records

    if (fig := loop_headline_scores(headline_records(results, "04_training_loop"), figures_dir)) is not None:
        plots.plt.close(fig)
        drawn.append("loop_headline_scores")
    from ..data import TASKS
    from .architecture import architecture_figure

    tasks = {t: len(TASKS[t].label_names) for t in ("topic", "sentiment", "airline")}
    plots.plt.close(architecture_figure(tasks, name="02_architecture", figures_dir=figures_dir))
    return drawn + ["architecture"]


def headline_scores(results: Path, figures_dir: Path | None = None):
    """Task 3 as the rule reads it: each headline strategy's full-test score (ten seeds, 95%
    interval over seeds and items), one row of panels per size, cheapest first (median training
    seconds over every run), the rule's choice ringed. None before any headline run."""
    from statistics import median

    from ..experiments.headline import CELLS, recommendation
    from .claims_headline import headline_records
    from .names import names

    records = [r for r in headline_records(results) if not r.get("stage")]
    if not records:
        return None
    seconds = {s: median(r["train_seconds"] for r in records if r["strategy"] == s)
               for s in {r["strategy"] for r in records}}
    strategies = sorted(seconds, key=lambda s: (seconds[s], s))
    seeds = max(len({(r["seed"]) for r in records if r["strategy"] == s}) for s in strategies)
    chosen = {(r["task"], r["k"]): r["chosen"] for r in recommendation(records, cells=CELLS)
              if r["decided"]}  # chosen on validation alone, so no test labels are needed here
    return plots.interval_dots(
        records, strategies, list(CLASSIFICATION),
        f"{seeds} seeds, full test sets; ringed: the rule's choice",
        name="03_headline_scores", figures_dir=figures_dir, labels={s: names().get(s, s) for s in strategies},
        ringed=chosen, rows_by="n_per_class")


def _cost_vs_quality(records: list[dict], figures_dir: Path | None = None):
    from ..experiments.grids import GRIDS

    size = GRIDS[records[0].get("profile", "standard")].cost_size
    return plots.cost_vs_quality(
        compared(records),
        list(CLASSIFICATION),
        size,
        "Training cost vs test metric",
        name="03_cost_vs_quality",
        figures_dir=figures_dir,
    )


def _wise_ft(result: dict, figures_dir: Path | None = None):
    from .wise_ft import wise_ft_figure

    return wise_ft_figure(result, figures_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results")
    parser.add_argument("--figures", type=Path, default=REPO_ROOT / "figures")
    args = parser.parse_args(argv)
    print("redrew: " + ", ".join(redraw(args.results, args.figures)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
