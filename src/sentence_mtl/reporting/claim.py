"""One claim: a named number with its interval, verdict, unit, and the records it came from.

The primitives ``claims`` and ``claims_tasks`` build every claim from.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..experiments.analysis import Z95, interval, verdict
from ..references import PUBLISHED

UNITS = ("percent", "score", "points", "ratio", "count", "minutes", "seconds", "number", "name", "rows")


def claim(
    value, low=None, high=None, *, unit: str, source: str, seeds=None, items=None, reference=None, **extra
) -> dict:
    """One named number. A ``points`` claim with an interval gets its verdict against zero, any
    other against ``reference`` when one is given (a published number, BM25's fixed score)."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: use one of {UNITS}")
    c = {"value": value, "unit": unit, "source": source, **extra}
    if low is not None:
        c.update(low=low, high=high)
        if unit == "points" or reference is not None:
            c["verdict"] = verdict(low, high, reference or 0.0)
    if seeds is not None:
        c["seeds"] = seeds
    if items is not None:
        c["n_items"] = items
    return c


def difference(d: dict | None, source: str, items=None) -> dict | None:
    """A paired difference from ``analysis.paired`` (or any mean/low/high dict) as a points claim."""
    if d is None:
        return None
    return claim(
        d["mean"], d["low"], d["high"], unit="points", source=source, seeds=d.get("seeds"), items=items
    )


def pending_difference(d: dict | None, source: str, items=None) -> dict:
    """``difference``, or, before any run of it is stored, a points claim with no value and zero
    seeds: the name exists for the templates, which print it only once its seeds are in."""
    return difference(d, source, items) or claim(None, unit="points", source=source, seeds=0)


def load(results: Path, stem: str):
    path = results / f"{stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _values(records, strategy, task, k=None, key="value"):
    return [
        r[key]
        for r in records
        if r["strategy"] == strategy
        and r["task"] == task
        and r.get("n_per_class") == k
        and not r.get("stage")
    ]


def mean_claim(records, strategy, task, k=None, *, source, unit="percent", key="value", items_key="n_test"):
    """Mean over seeds of one (strategy, task, k) with its 95% interval over seeds and test items."""
    values = _values(records, strategy, task, k, key)
    if not values:
        return None
    n = next(
        r.get(items_key)
        for r in records
        if r["strategy"] == strategy
        and r["task"] == task
        and r.get("n_per_class") == k
        and not r.get("stage")
    )
    mean, low, high = interval(values, n)
    where = f"{source}: strategy={strategy}, task={task}, n_per_class={k}"
    return claim(mean, low, high, unit=unit, source=where, seeds=len(values), items=n)


def spearman_interval(rho: float, n: int) -> tuple[float, float, float]:
    """Spearman's rho and its 95% interval by Fisher's z with the standard error 1.06 / sqrt(n - 3)
    (Fieller, Hartley and Pearson 1957)."""
    z, half = math.atanh(rho), Z95 * 1.06 / math.sqrt(n - 3)
    return rho, math.tanh(z - half), math.tanh(z + half)


def published(key: str, unit: str = "score") -> dict:
    value, source = PUBLISHED[key]
    return claim(value, unit=unit, source=f"references.PUBLISHED[{key!r}]", cite=source)
