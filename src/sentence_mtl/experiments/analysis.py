"""The one analysis layer over result records: what notebooks, the README and the report all
compute from them (summaries over seeds, the best strategy per size, forgetting, duplicates).

Torch-free: ``sentence_mtl.reporting`` imports it.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd


def summarize(records: list[dict], by=("task", "strategy", "n_per_class")) -> pd.DataFrame:
    """Mean, std and number of seeds of ``value`` per group (``n_per_class`` None shown as 'all')."""
    df = pd.DataFrame(records)
    if "n_per_class" in df:
        df["n_per_class"] = df["n_per_class"].map(lambda k: "all" if pd.isna(k) else int(k))
    return (df.groupby(list(by), sort=False)["value"]
              .agg(mean="mean", std="std", seeds="count").reset_index())


def percent_cell(mean: float, std: float | None = None, seeds: int = 1) -> str:
    """``mean ± std`` in percent, one decimal; the mean alone for a single seed."""
    if seeds > 1 and std is not None and not pd.isna(std):
        return f"{100 * mean:.1f} ± {100 * std:.1f}"
    return f"{100 * mean:.1f}"


def mean_std_table(records: list[dict], index=("task", "strategy"), columns="n_per_class") -> pd.DataFrame:
    """Mean ± std over seeds (percent), one row per ``index`` group, one column per ``columns`` value."""
    summary = summarize(records, by=(*index, columns))
    summary["cell"] = [percent_cell(m, s, n) for m, s, n in zip(summary["mean"], summary["std"], summary["seeds"])]
    return summary.pivot(index=list(index), columns=columns, values="cell").fillna("")


def best_at(records: list[dict], k, task: str) -> pd.DataFrame:
    """Strategies at k examples per class (None: all), best mean first (empty when none ran at k),
    with the number of test items each was scored on."""
    runs = [r for r in records if r["task"] == task and r["n_per_class"] == k]
    if not runs:
        return pd.DataFrame()
    rows = summarize(runs, by=("strategy",))
    rows["n_test"] = [next(r["n_test"] for r in runs if r["strategy"] == s) for s in rows.strategy]
    return rows.sort_values("mean", ascending=False).reset_index(drop=True)


def duplicate_runs(records: list[dict]) -> list[tuple]:
    """Runs recorded more than once (same task, strategy, size, seed, stage): a grid that
    schedules a run twice would count it as two seeds in every summary."""
    counts = Counter((r["task"], r["strategy"], r["n_per_class"], r["seed"], r.get("stage")) for r in records)
    return [key for key, n in counts.items() if n > 1]


def forgetting(records: list[dict]) -> pd.DataFrame:
    """Topic metric after stage 1 minus after stage 2, per sequential variant and seed."""
    df = pd.DataFrame([r for r in records if r.get("stage") and r["task"] == "topic"])
    wide = df.pivot_table(index=["strategy", "seed"], columns="stage", values="value").reset_index()
    wide["forgetting"] = wide["after_topic"] - wide["after_sentiment"]
    return wide
