"""Named claims: every number the README, ``docs/`` and the report state, computed from ``results/``.

A claim is a dict: ``value``, its 95% interval (``low``, ``high``) when it has one, ``verdict``
("ahead", "behind", "tie") for a difference, ``unit`` (how a template prints it), ``seeds`` and
``n_items`` (test items) it rests on, and ``source`` (the results file and the records it came from). The
sentences around the claims are written by hand in ``templates/`` and ``report/report.typ``; no
English is built here. ``python -m sentence_mtl.reporting.claims`` writes ``results/claims.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import REPO_ROOT
from ..io import atomic_path
from . import claims_headline, claims_studies, claims_tasks
from .claim import claim, spearman_interval  # noqa: F401  (the primitives, for callers of this module)

RESULTS = REPO_ROOT / "results"
CLAIMS_JSON = RESULTS / "claims.json"
__all__ = ["CLAIMS_JSON", "RESULTS", "build", "claim", "spearman_interval", "write"]


def build(results: Path = RESULTS) -> dict:
    """Every claim, by name; a claim whose records are missing is absent (a template naming it fails)."""
    named: dict = {}
    for part in (
        claims_tasks.embeddings,
        claims_tasks.heads,
        claims_studies.freezing,
        claims_headline.headline,
        claims_headline.loop_headline,
        claims_studies.training_loop,
        claims_tasks.retrieval,
        claims_tasks.operations,
        claims_tasks.details,
    ):
        named.update(part(results))
    return {name: c for name, c in sorted(named.items()) if c is not None}


def write(results: Path = RESULTS, path: Path = CLAIMS_JSON) -> dict:
    """``results/claims.json``; a claim that is not a finite number stops it, named (the report
    and the templates could not print it)."""
    import math

    claims = build(results)
    bad = [
        name
        for name, c in claims.items()
        for key in ("value", "low", "high")
        if isinstance(c.get(key), float) and not math.isfinite(c[key])
    ]
    if bad:
        raise ValueError(
            f"claims without a finite value: {sorted(set(bad))}; check the records they come from"
        )
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(claims, indent=1, sort_keys=True) + "\n")
    return claims


if __name__ == "__main__":
    print(f"{len(write())} claims -> {CLAIMS_JSON.relative_to(REPO_ROOT)}")
