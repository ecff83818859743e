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


HEADLINE_STEMS = ("03_freezing_strategies", "04_training_loop")  # results files holding headline records


def without_headline(records: list[dict] | None) -> list[dict] | None:
    """The study's other runs (test subsets, 3-5 seeds): its records minus the headline grid's,
    which score the full test sets and are read apart (``recommendation``, ``paired_items``)."""
    return None if records is None else [r for r in records if not r.get("headline")]


def duplicate_runs(records: list[dict]) -> list[tuple]:
    """Runs recorded more than once (same task, strategy, size, seed, stage): a grid that
    schedules a run twice would count it as two seeds in every summary."""
    counts = Counter((r["task"], r["strategy"], r["n_per_class"], r["seed"], r.get("stage"))
                     + (("headline",) if r.get("headline") else ()) for r in records)
    return [key for key, n in counts.items() if n > 1]


def forgetting(records: list[dict]) -> pd.DataFrame:
    """Topic metric after stage 1 minus after stage 2, per sequential variant and seed."""
    df = pd.DataFrame([r for r in records if r.get("stage") and r["task"] == "topic"])
    wide = df.pivot_table(index=["strategy", "seed"], columns="stage", values="value").reset_index()
    wide["forgetting"] = wide["after_topic"] - wide["after_sentiment"]
    return wide


# 95% intervals. A study's mean over seeds carries two kinds of noise: the seeds (sample drawn,
# initialisation, batch order), measured by their spread (Student t, n - 1 degrees of freedom),
# and the finite test set, bounded by the binomial variance p(1 - p) / n_test of a rate. The two
# are combined in quadrature. A paired difference (same seeds, same samples, same test items)
# uses the spread of the per-seed differences, plus both rates' binomial terms as if the two
# strategies erred independently: that over-states the item noise of a paired difference, so a
# difference called real here is real, and some real ones are called ties.
Z95 = 1.959964


def _t95(seeds: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, seeds - 1)) if seeds > 1 else float("nan")


def _item_variance(rate: float, n_test: int | None) -> float:
    return rate * (1 - rate) / n_test if n_test else 0.0


def _seed_half(values: list[float]) -> float:
    """Half-width of the 95% t-interval of the mean of ``values`` (0 for a single value)."""
    n = len(values)
    return _t95(n) * pd.Series(values).std(ddof=1) / n ** 0.5 if n > 1 else 0.0


def verdict(low: float, high: float, reference: float = 0.0) -> str:
    """"ahead" when the interval lies above ``reference``, "behind" when below, else "tie"."""
    return "ahead" if low > reference else "behind" if high < reference else "tie"


VERDICT_WORDS = {"ahead": "ahead", "behind": "behind", "tie": "a tie"}  # a verdict as prose
AGAINST_WORDS = {"ahead": "ahead of", "behind": "behind", "tie": "tied with"}  # "... <words> BM25"


def interval(values: list[float], n_test: int | None = None) -> tuple[float, float, float]:
    """(mean, low, high): the mean over seeds and its 95% interval (seeds and test items)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    half = (_seed_half(values) ** 2 + Z95 ** 2 * _item_variance(mean, n_test)) ** 0.5
    return mean, mean - half, mean + half


def paired(records: list[dict], a: str, b: str, task: str, k) -> dict | None:
    """``a`` minus ``b`` at (task, k), paired by seed: mean, 95% interval, and the verdict
    ("ahead", "behind", or "tie" when the interval holds zero). None when they share no seed."""
    def by_seed(strategy):
        return {r["seed"]: r for r in records if r["strategy"] == strategy and r["task"] == task
                and r["n_per_class"] == k and not r.get("stage")}
    ra, rb = by_seed(a), by_seed(b)
    seeds = sorted(set(ra) & set(rb))
    if not seeds:
        return None
    diffs = [ra[s]["value"] - rb[s]["value"] for s in seeds]
    mean = sum(diffs) / len(diffs)
    n_test = min(ra[seeds[0]].get("n_test") or 0, rb[seeds[0]].get("n_test") or 0) or None
    items = _item_variance(sum(ra[s]["value"] for s in seeds) / len(seeds), n_test) + \
        _item_variance(sum(rb[s]["value"] for s in seeds) / len(seeds), n_test)
    half = (_seed_half(diffs) ** 2 + Z95 ** 2 * items) ** 0.5
    low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "seeds": len(seeds), "verdict": verdict(low, high)}


# Paired on seeds AND items. Headline records keep every predicted test label, so a difference
# is bootstrapped at both levels at once: each replicate draws seeds with replacement and, for
# all of them alike, the test items with replacement (a two-level bootstrap for a crossed design:
# every seed scores the same items), recomputes each seed's metric for both strategies on the
# drawn items and averages the per-seed differences over the drawn seeds. Items that both
# strategies get right or both get wrong cancel, which the binomial terms above cannot know.
BOOTSTRAP_METHOD = "two-level bootstrap over seeds and test items"


def per_seed_metrics(correct: "np.ndarray", labels: "np.ndarray", weights: "np.ndarray", metric: str) -> "np.ndarray":
    """Each seed's metric (rows of ``correct``, seeds x items) under item ``weights`` (counts of a
    resample: one vector, or replicates x items), as seeds or seeds x replicates: accuracy, or
    macro recall (mean over classes of the weighted recall)."""
    import numpy as np

    weights = np.asarray(weights)
    weights = weights if weights.dtype.kind == "f" else weights.astype(np.float32)
    if metric == "accuracy":
        return correct @ weights.T / weights.sum(axis=-1)
    recalls = []
    for c in np.unique(labels):
        at = np.flatnonzero(labels == c)
        part = slice(at[0], at[-1] + 1) if at[-1] - at[0] + 1 == len(at) else at  # a view when contiguous
        recalls.append(correct[:, part] @ weights[..., part].T / np.maximum(weights[..., part].sum(axis=-1), 1))
    return np.mean(recalls, axis=0)


def item_predictions(records: list[dict], strategy: str, task: str, k) -> dict[int, "np.ndarray"]:
    """{seed: predicted test labels} of a strategy's headline records at (task, k)."""
    from ..results import decode_labels

    return {r["seed"]: decode_labels(r["predictions"]) for r in records if r.get("predictions")
            and r["strategy"] == strategy and r["task"] == task and r["n_per_class"] == k
            and not r.get("stage")}


class ItemResamples:
    """Resamples of one test set's items, drawn once and shared by every comparison on that test
    set (common random numbers: each strategy's per-seed metric is recomputed on the same drawn
    items, so a comparison reads two rows of one table instead of drawing its own)."""

    def __init__(self, labels, reps: int = 2000, seed: int = 0):
        import numpy as np

        labels = np.asarray(labels)
        self.order = np.argsort(labels, kind="stable")  # items grouped by class: each class one slice
        self.labels = labels[self.order]
        self.reps, self.seed = reps, seed
        rng = np.random.default_rng(seed)
        n = len(labels)
        self.weights = np.concatenate([rng.multinomial(n, np.full(n, 1 / n), size=len(chunk)).astype(np.uint8)
                                       for chunk in np.array_split(np.arange(reps), max(1, reps // 250))])
        self._metrics: dict = {}
        self._float = None

    def metrics(self, strategy: str, predictions: dict[int, "np.ndarray"], metric: str):
        """({seed: metric on the whole test set}, {seed: the metric on each resample})."""
        import numpy as np

        key = (strategy, metric, tuple((s, hash(predictions[s].tobytes())) for s in sorted(predictions)))
        if key not in self._metrics:
            seeds = sorted(predictions)
            correct = np.stack([(predictions[s][self.order] == self.labels) for s in seeds])
            point = per_seed_metrics(correct.astype(float), self.labels, np.ones(len(self.labels)), metric)
            if self._float is None:  # float32 holds every count exactly; one conversion per test set
                self._float = self.weights.astype(np.float32)
            reps = per_seed_metrics(correct.astype(np.float32), self.labels, self._float, metric)
            self._metrics[key] = (dict(zip(seeds, point)), dict(zip(seeds, reps.astype(float))))
        return self._metrics[key]


def paired_items(records: list[dict], a: str, b: str, task: str, k, labels, reps: int = 2000,
                 seed: int = 0) -> dict | None:
    """``a`` minus ``b`` at (task, k) from their kept predictions, paired on seeds and test items
    (``BOOTSTRAP_METHOD``): mean, 95% percentile interval, verdict. ``labels``: the test set's
    gold labels in record order, or an ``ItemResamples`` of them shared between comparisons.
    None unless both kept predictions on common seeds."""
    import numpy as np

    resamples = labels if isinstance(labels, ItemResamples) else ItemResamples(labels, reps, seed)
    pa, pb = item_predictions(records, a, task, k), item_predictions(records, b, task, k)
    seeds = sorted(set(pa) & set(pb))
    if not seeds:
        return None
    n = len(resamples.labels)
    if any(len(p) != n for p in (*pa.values(), *pb.values())):
        raise ValueError(f"{task}: predictions of {a} or {b} do not cover the {n} test items given")
    metric = next(r["metric"] for r in records if r["strategy"] == a and r["task"] == task)
    point_a, reps_a = resamples.metrics(a, {s: pa[s] for s in seeds}, metric)
    point_b, reps_b = resamples.metrics(b, {s: pb[s] for s in seeds}, metric)
    diffs = np.array([point_a[s] - point_b[s] for s in seeds])
    per_seed = np.stack([reps_a[s] - reps_b[s] for s in seeds])  # seeds x replicates
    drawn = np.random.default_rng(resamples.seed + 1).integers(0, len(seeds), (resamples.reps, len(seeds)))
    draws = np.take_along_axis(per_seed.T, drawn, axis=1).mean(axis=1)
    low, high = (float(q) for q in np.percentile(draws, [2.5, 97.5]))
    return {"mean": float(diffs.mean()), "low": low, "high": high, "seeds": len(seeds), "items": n,
            "verdict": verdict(low, high), "method": BOOTSTRAP_METHOD}


def same_test_items(records: list[dict]) -> bool:
    """Whether every record of each task was scored on one test set (the same number of items)."""
    sizes: dict[str, set] = {}
    for r in records:
        sizes.setdefault(r["task"], set()).add(r.get("n_test"))
    return all(len(n) == 1 for n in sizes.values())


def majority_floors(records: list[dict]) -> dict[str, float]:
    """Each task's majority-class score on its full official test set (notebook 03's records)."""
    return {r["task"]: r["full_test_value"] for r in records
            if r["strategy"] == "majority_class" and r.get("full_test_value") is not None}


def interval_text(mean: float, low: float, high: float, unit: str = "%") -> str:
    """``82.3% (95% CI 81.1-83.5)``; ``unit=""`` for a correlation."""
    return f"{percent_cell(mean)}{unit} (95% CI {percent_cell(low)}–{percent_cell(high)})"


def training_seconds(records: list[dict]) -> float:
    """Seconds of training the records hold, each run counted once: a run that trains two tasks
    writes one record per task with the same ``train_seconds``. A lower bound on recomputing them
    (encoding, evaluation and kernel starts come on top)."""
    return sum({r["train_seconds"] for r in records if r.get("train_seconds")})


def bootstrap(statistics: dict, n_items: int, reps: int = 1000, seed: int = 0) -> dict:
    """Each statistic (a function of an index array) on the same ``reps`` resamples of the items,
    drawn with replacement: paired, so differences between two models' draws give the interval
    of their difference."""
    import numpy as np

    rng = np.random.default_rng(seed)
    draws = {name: np.empty(reps) for name in statistics}
    for r in range(reps):
        idx = rng.integers(0, n_items, n_items)
        for name, statistic in statistics.items():
            draws[name][r] = statistic(idx)
    return draws


def retrieval_summary(records: list[dict]) -> dict | None:
    """Notebook 05's records as notebook 05, the README and the report all state them: NDCG@10 of
    BM25 and the pretrained encoder; per fine-tuning recipe (the records carrying ``val_ndcg10``)
    its mean over seeds with a 95% interval, its validation score, its hybrid with BM25 and its
    seconds; the recipe validation chooses (never the test set); and each other recipe minus the
    first, paired by seed. Intervals cover the seeds; the queries are fixed."""
    ndcg = [r for r in records if r["metric"] == "ndcg@10"]
    by_seed = lambda s: {r.get("seed"): r for r in ndcg if r["strategy"] == s}  # noqa: E731
    fixed = {s: next((r["value"] for r in ndcg if r["strategy"] == s), None)
             for s in ("bm25", "pretrained", "hybrid_bm25_pretrained")}
    recipes = list(dict.fromkeys(r["strategy"] for r in ndcg if r.get("val_ndcg10") is not None))
    if not recipes or fixed["bm25"] is None or fixed["pretrained"] is None:
        return None
    summary = {**fixed, "n_queries": ndcg[0]["n_test"], "recipes": {}}
    for s in recipes:
        runs = by_seed(s)
        ids = {r["run_id"] for r in runs.values()}
        hybrid = next((r["strategy"] for r in ndcg if r.get("run_id") in ids and "fusion_val_ndcg10" in r), None)
        summary["recipes"][s] = {
            "test": interval([r["value"] for r in runs.values()]), "seeds": len(runs),
            "val": sum(r["val_ndcg10"] for r in runs.values()) / len(runs),
            "seconds": sum(r["train_seconds"] for r in runs.values()) / len(runs),
            "best_epochs": [r["best_epoch"] for r in runs.values() if "best_epoch" in r],
            "hybrid": hybrid, "hybrid_test": interval([r["value"] for r in by_seed(hybrid).values()]) if hybrid else None,
            "hybrid_weights": sorted(r["fusion_dense_weight"] for r in by_seed(hybrid).values()) if hybrid else []}
        if s != recipes[0]:
            first, this = by_seed(recipes[0]), runs
            seeds = sorted(set(first) & set(this))
            summary["recipes"][s]["minus_first"] = interval([this[k]["value"] - first[k]["value"] for k in seeds])
    summary["first"] = recipes[0]
    summary["chosen"] = max(recipes, key=lambda s: summary["recipes"][s]["val"])
    return summary
