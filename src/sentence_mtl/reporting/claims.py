"""Named claims: every number the README, ``docs/`` and the report state, computed from ``results/``.

A claim is a dict: ``value``, its 95% interval (``low``, ``high``) when it has one, ``verdict``
("ahead", "behind", "tie") for a difference, ``unit`` (how a template prints it), ``seeds`` and
``n_items`` (test items) it rests on, and ``source`` (the results file and the records it came from). The
sentences around the claims are written by hand in ``templates/`` and ``report/report.typ``; no
English is built here. ``python -m sentence_mtl.reporting.claims`` writes ``results/claims.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..config import REPO_ROOT
from ..experiments.analysis import Z95, interval, paired, verdict
from ..io import atomic_path
from ..references import PUBLISHED

RESULTS = REPO_ROOT / "results"
CLAIMS_JSON = RESULTS / "claims.json"
UNITS = ("percent", "score", "points", "ratio", "count", "minutes", "seconds", "number", "name", "rows")


def claim(value, low=None, high=None, *, unit: str, source: str, seeds=None, items=None, reference=None,
          **extra) -> dict:
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
    return claim(d["mean"], d["low"], d["high"], unit="points", source=source, seeds=d.get("seeds"), items=items)


def load(results: Path, stem: str):
    path = results / f"{stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _values(records, strategy, task, k=None, key="value"):
    return [r[key] for r in records if r["strategy"] == strategy and r["task"] == task
            and r.get("n_per_class") == k and not r.get("stage")]


def mean_claim(records, strategy, task, k=None, *, source, unit="percent", key="value", items_key="n_test"):
    """Mean over seeds of one (strategy, task, k) with its 95% interval over seeds and test items."""
    values = _values(records, strategy, task, k, key)
    if not values:
        return None
    n = next(r.get(items_key) for r in records if r["strategy"] == strategy and r["task"] == task
             and r.get("n_per_class") == k and not r.get("stage"))
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
    return claim(value, unit=unit, source=f"references.PUBLISHED[{key!r}]",
                 cite=source)


def build(results: Path = RESULTS) -> dict:
    """Every claim, by name; a claim whose records are missing is absent (a template naming it fails)."""
    from . import claims_tasks

    named: dict = {}
    for part in (claims_tasks.embeddings, claims_tasks.heads, claims_tasks.freezing, claims_tasks.training_loop,
                 claims_tasks.retrieval, claims_tasks.operations):
        named.update(part(results))
    return {name: c for name, c in sorted(named.items()) if c is not None}


def write(results: Path = RESULTS, path: Path = CLAIMS_JSON) -> dict:
    claims = build(results)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(claims, indent=1, sort_keys=True) + "\n")
    return claims


if __name__ == "__main__":
    print(f"{len(write())} claims -> {CLAIMS_JSON.relative_to(REPO_ROOT)}")
