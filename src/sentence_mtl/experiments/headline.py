"""Task 3's headline grid, read: one row per strategy and cell, and the recommendation by data
size. One rule: the best strategy on validation, then the cheapest strategy not behind it on
validation; the full official test sets only report.

Torch-free, like ``analysis``, on which it builds: ``sentence_mtl.reporting`` imports it.
"""

from __future__ import annotations

from statistics import median

from .analysis import interval, paired, paired_items

CELLS = (("topic", 8), ("topic", 64), ("sentiment", 8), ("sentiment", 64))


def grid():
    from .grids import GRIDS

    return GRIDS["standard"].headline


def best_on_validation(by_strategy: dict[str, list[dict]]) -> str:
    """The strategy with the highest mean validation score over its runs: choices never read test."""
    return max(by_strategy, key=lambda s: sum(r["val_value"] for r in by_strategy[s]) / len(by_strategy[s]))


def paired_to(records: list[dict], a: str, b: str, task: str, k, items=None) -> dict | None:
    """``a`` minus ``b`` on test: paired on seeds and test items (``paired_items``) when
    ``items``, the gold test labels or their ``ItemResamples``, are given; on seeds only
    (``paired``) otherwise."""
    return paired(records, a, b, task, k) if items is None else paired_items(records, a, b, task, k, items)


def paired_on_validation(records: list[dict], a: str, b: str, task: str, k) -> dict | None:
    """``a`` minus ``b`` on the validation subset, paired by seed, with no item term.

    Every strategy is scored on the same validation items, so their sampling largely cancels in
    a paired difference (on the test sets, where each predicted label is kept, the two-level
    bootstrap's intervals stay close to the seed-only ones). No per-item validation predictions
    are kept to bootstrap it; counting the item term as if the strategies erred independently
    would widen the interval several-fold and keep strategies the test sets put points behind.
    """
    val = [{**r, "value": r["val_value"], "n_test": None} for r in records]
    return paired(val, a, b, task, k)


def headline_rows(records: list[dict], labels: dict, cells=CELLS) -> list[dict]:
    """One row per (task, k, strategy) of the headline records: seeds, mean validation score, the
    full-test mean with its 95% interval, median training seconds, and the difference to the best
    on validation in its cell (``paired_to`` with ``labels[task]``; None for that strategy)."""
    headline = [r for r in records if r.get("headline") and not r.get("stage")]
    rows = []
    for task, k in cells:
        by: dict[str, list[dict]] = {}
        for r in headline:
            if r["task"] == task and r["n_per_class"] == k:
                by.setdefault(r["strategy"], []).append(r)
        if not by:
            continue
        best = best_on_validation(by)
        for s, runs in sorted(by.items(), key=lambda item: -sum(r["value"] for r in item[1]) / len(item[1])):
            mean, low, high = interval([r["value"] for r in runs], runs[0].get("n_test"))
            d = None if s == best else paired_to(headline, s, best, task, k, labels.get(task))
            rows.append({"task": task, "k": k, "strategy": s, "seeds": len(runs), "best_on_validation": best,
                         "val_value": sum(r["val_value"] for r in runs) / len(runs), "value": mean, "low": low,
                         "high": high, "train_seconds": median([r["train_seconds"] for r in runs]),
                         "n_test": runs[0].get("n_test"), "minus_best": d})
    return rows


def recommendation(records: list[dict], cells=CELLS, strategies=None, seeds=None,
                   labels: dict | None = None) -> list[dict]:
    """One row per (task, k): the cheapest strategy (median training seconds) whose paired
    validation difference to the best-on-validation strategy is not "behind" (95% interval below
    zero, ``paired_on_validation``).

    Reads only records marked ``headline``. Both choices read ``val_value`` only, never the test
    set; ``value`` is the chosen strategy's full-test metric and ``difference`` its paired test
    difference to the best on validation, reported, not used. A cell without headline records is
    returned with ``decided`` False and no strategy, so that nothing is recommended unmeasured;
    so is a cell where any of ``strategies`` (default: the standard headline grid's) lacks any of
    ``seeds`` (default: the grid's), with ``runs`` and ``runs_needed`` saying how far it is.
    ``labels``: {task: gold test labels or their ``ItemResamples``}; with them, every difference
    is paired on seeds and items (``paired_items``), without them on seeds only (``paired``).
    """
    strategies = tuple(grid().strategies if strategies is None else strategies)
    seeds = tuple(grid().seeds if seeds is None else seeds)
    headline = [r for r in records if r.get("headline") and not r.get("stage")]
    rows = []
    for task, k in cells:
        runs = [r for r in headline if r["task"] == task and r["n_per_class"] == k]
        have = {(r["strategy"], r["seed"]) for r in runs}
        needed = {(s, seed) for s in strategies for seed in seeds}
        if not needed <= have:
            rows.append({"task": task, "k": k, "decided": False, "runs": len(have & needed),
                         "runs_needed": len(needed)})
            continue
        runs = [r for r in runs if (r["strategy"], r["seed"]) in needed]
        by = {}
        for r in runs:
            by.setdefault(r["strategy"], []).append(r)
        best = best_on_validation(by)
        seconds = {s: median([r["train_seconds"] for r in rs]) for s, rs in by.items()}
        on_validation = {s: paired_on_validation(runs, s, best, task, k) for s in by if s != best}
        kept = [best] + [s for s, d in on_validation.items() if d and d["verdict"] != "behind"]
        chosen = min(kept, key=lambda s: (seconds[s], s != best))
        items = (labels or {}).get(task)
        mean, low, high = interval([r["value"] for r in by[chosen]], by[chosen][0].get("n_test"))
        zero = {"mean": 0.0, "low": 0.0, "high": 0.0, "seeds": len(by[best]), "verdict": "tie"}
        rows.append({"task": task, "k": k, "decided": True, "best_on_validation": best, "chosen": chosen,
                     "value": mean, "low": low, "high": high, "train_seconds": seconds[chosen],
                     "best_train_seconds": seconds[best], "seeds": len(by[chosen]),
                     "n_test": by[chosen][0].get("n_test"),
                     "difference": zero if chosen == best else paired_to(runs, chosen, best, task, k, items),
                     "val_difference": zero if chosen == best else on_validation[chosen]})
    return rows
