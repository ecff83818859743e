"""In and out of domain (``results/robustness.json``): the compared models in order, their paired
differences, the targets, and the report's rows."""

from __future__ import annotations

SET_NAMES = {"topic": "AG News test (accuracy)", "sentiment": "TweetEval test (macro recall)",
             "uci_sentences": "review sentences (pos. vs neg.)", "airline_sentiment": "airline tweets (macro recall)"}

# Targets for the saved model, set against RoBERTa-base's 71.3 on TweetEval (Barbieri et al. 2020,
# a model 5x larger) and against the AG News accuracy of the baseline recipe.
TEST_TARGETS = {"topic": 0.915, "sentiment": 0.70}


def models_in_order(result: dict) -> list[str]:
    """Frozen encoder, baseline recipe (when scored), WiSE-FT (when chosen), the saved model last."""
    names = list(result["compared"])
    if result.get("baseline"):
        names.insert(1, result["baseline"]["name"])
    return names


def difference(result: dict, set_name: str, a: str, b: str) -> dict:
    """``a`` minus ``b`` on one set, from the stored paired bootstrap (either order)."""
    for p in result["sets"][set_name]["paired"]:
        if (p["a"], p["b"]) == (a, b):
            return p
        if (p["a"], p["b"]) == (b, a):
            return {"a": a, "b": b, "mean": -p["mean"], "low": -p["high"], "high": -p["low"]}
    raise KeyError(f"no paired difference of {a!r} and {b!r} on {set_name} in results/robustness.json")


def _cell(m: dict) -> str:
    return f"{100 * m['value']:.1f} ({100 * m['low']:.1f}–{100 * m['high']:.1f})"


def report_data(result: dict | None) -> dict | None:
    """The report's out-of-domain table: one row per compared model."""
    if not result:
        return None
    sets = result["sets"]
    return {"chosen_alpha": f"{result['chosen_alpha']:.1f}", "reps": result["bootstrap_reps"],
            "n_uci": f"{sets['uci_sentences']['n']:,}", "n_airline": f"{sets['airline_sentiment']['n']:,}",
            "rows": [{"model": name, "cells": [_cell(sets[s]["models"][name]) for s in SET_NAMES],
                      "uci_neutral": f"{100 * sets['uci_sentences']['models'][name]['neutral_share']:.1f}%",
                      "news_neutral": f"{100 * result['news_called_neutral'][name]:.1f}%"}
                     for name in models_in_order(result)]}
