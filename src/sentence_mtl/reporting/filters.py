"""How a claim is printed: one filter per kind of number, so every slot formats the same way.

``pct`` a rate or score (``91.8%``; a Spearman or NDCG score without the sign), ``pts`` a
difference (``+3.6 points``), ``ci`` an interval (``95% CI 91.2–92.4``, or ``+2.6 to +4.7`` for a
difference), ``x`` a ratio, ``n`` a count, ``minutes`` and ``seconds`` a duration, ``sci`` a tiny
number. A filter given a claim of another unit fails, so a slot cannot print a number as what it
is not.
"""

from __future__ import annotations

from jinja2 import Undefined


class SlotError(ValueError):
    """A template used a filter on a claim of another kind."""


def _check(claim: dict, *units: str) -> dict:
    if isinstance(claim, Undefined):
        claim._fail_with_undefined_error()  # a slot naming no claim fails with the claim's name
    if not isinstance(claim, dict) or "unit" not in claim:
        raise SlotError(f"expected a claim, got {claim!r}")
    if claim["unit"] not in units:
        raise SlotError(
            f"claim from {claim.get('source')} has unit {claim['unit']!r}, not {' or '.join(units)}"
        )
    return claim


def pct(claim: dict) -> str:
    c = _check(claim, "percent", "score")
    return f"{100 * c['value']:.1f}" + ("%" if c["unit"] == "percent" else "")


def pts(claim: dict) -> str:
    return f"{100 * _check(claim, 'points')['value']:+.1f} points"


def ci(claim: dict) -> str:
    c = _check(claim, "percent", "score", "points")
    if "low" not in c:
        raise SlotError(f"claim from {c['source']} has no interval")
    if c["unit"] == "points":
        return f"95% CI {100 * c['low']:+.1f} to {100 * c['high']:+.1f}"
    return f"95% CI {100 * c['low']:.1f}–{100 * c['high']:.1f}"


def x(claim: dict) -> str:
    return f"{_check(claim, 'ratio')['value']:.2f}x"


def n(claim: dict | int) -> str:
    """A count, with thousands separated (a claim, or a claim's ``n_items`` or ``seeds``)."""
    return f"{claim:,}" if isinstance(claim, int) else f"{_check(claim, 'count', 'number')['value']:,}"


def minutes(claim: dict) -> str:
    return f"{_check(claim, 'minutes')['value']:.0f} minutes"


def seconds(claim: dict) -> str:
    value = _check(claim, "seconds")["value"]
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def sci(claim: dict) -> str:
    return f"{_check(claim, 'number')['value']:.1e}"


def num(claim: dict) -> str:
    """A plain number such as an ensemble weight, one decimal."""
    return f"{_check(claim, 'number')['value']:.1f}"


FILTERS = {f.__name__: f for f in (pct, pts, ci, x, n, minutes, seconds, sci, num)}
