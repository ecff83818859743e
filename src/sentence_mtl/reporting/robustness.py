"""In and out of domain (``results/robustness.json``): the README's table and the WiSE-FT figure."""

from __future__ import annotations

from pathlib import Path

from ..experiments import analysis

SET_NAMES = {"topic": "AG News test (accuracy)", "sentiment": "TweetEval test (macro recall)",
             "uci_sentences": "review sentences (pos. vs neg.)", "airline_sentiment": "airline tweets (macro recall)"}
SHORT = {"topic": "AG News", "sentiment": "TweetEval", "uci_sentences": "review sentences",
         "airline_sentiment": "airline tweets"}


def _cell(m: dict) -> str:
    return f"{100 * m['value']:.1f} ({100 * m['low']:.1f}–{100 * m['high']:.1f})"


def robustness_table(result: dict) -> str:
    sets, models = result["sets"], list(result["compared"])
    uci, airline = sets["uci_sentences"], sets["airline_sentiment"]
    lines = ["### In and out of domain (`results/robustness.json`)", "",
             "The sentiment head meets other text than tweets. Out of domain, evaluation only: "
             f"{uci['n']:,} Amazon, IMDb and Yelp review sentences (UCI, Kotzias et al. 2015; positive or "
             "negative, scored on the positive-vs-negative decision, with the share called *neutral* beside it) "
             f"and {airline['n']:,} airline customer tweets (Twitter US Airline, test split, 3 classes). "
             "WiSE-FT (Wortsman et al. 2022) interpolates the weights between the frozen encoder with "
             "logistic-regression heads fitted on the same training texts (alpha 0) and the fine-tuned model "
             f"(alpha 1); alpha {result['chosen_alpha']:.1f} has the best mean validation metric of the two "
             "tasks (the test and out-of-domain sets played no part). 95% intervals from a bootstrap over "
             f"items ({result['bootstrap_reps']} resamples, the same for every model).", "",
             "| model | " + " | ".join(SET_NAMES.values()) + " | review sentences called neutral | news called neutral |",
             "|---|" + "---|" * (len(SET_NAMES) + 2)]
    for name in models:
        cells = [_cell(sets[s]["models"][name]) for s in SET_NAMES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * uci['models'][name]['neutral_share']:.1f}% | "
                     f"{100 * result['news_called_neutral'][name]:.1f}% |")
    lines += ["", "Paired differences (points, 95% interval over items):", ""]
    for s in SET_NAMES:
        parts = []
        for p in sets[s]["paired"]:
            v = analysis.verdict(p["low"], p["high"])
            parts.append(f"{p['a']} − {p['b']} {100 * p['mean']:+.1f} ({100 * p['low']:+.1f} to "
                         f"{100 * p['high']:+.1f}, {analysis.VERDICT_WORDS[v]})")
        lines.append(f"- {SHORT[s]}: " + "; ".join(parts) + ".")
    lines += ["", "![WiSE-FT](figures/robustness_wise_ft.png)"]
    return "\n".join(lines)


def wise_ft_figure(result: dict, figures_dir: Path):
    """Validation metric in domain against the out-of-domain metric, one point per alpha."""
    from . import plots

    fig, axes = plots.plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    curve = result["alphas"]
    x = [c["validation"]["sentiment"] for c in curve]
    for ax, name in zip(axes, ("uci_sentences", "airline_sentiment")):
        y = [c["out_of_domain"][name]["value"] for c in curve]
        ax.plot(x, y, "-o", color=plots.PALETTE[0], markersize=4)
        for c, xi, yi in zip(curve, x, y):
            if c["alpha"] in (0.0, 0.5, 1.0) or c["alpha"] == result["chosen_alpha"]:
                label = f"α={c['alpha']:.1f}" + (" (chosen)" if c["alpha"] == result["chosen_alpha"] else "")
                ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(6, 3), fontsize=8)
        ax.set_xlabel("TweetEval validation macro recall")
        ax.set_ylabel(SET_NAMES[name])
        ax.set_title(SHORT[name], fontsize=10)
        plots.percent_axis(ax, "x")
        plots.percent_axis(ax, "y")
    fig.suptitle("WiSE-FT: from the frozen encoder (α=0) to the fine-tuned model (α=1)", fontsize=11)
    fig.tight_layout()
    plots.save(fig, "robustness_wise_ft", figures_dir)
    return fig


def _difference(result: dict, set_name: str, a: str, b: str) -> dict:
    """``a`` minus ``b`` on one set, from the stored paired bootstrap (either order)."""
    for p in result["sets"][set_name]["paired"]:
        if (p["a"], p["b"]) == (a, b):
            return p
        if (p["a"], p["b"]) == (b, a):
            return {"a": a, "b": b, "mean": -p["mean"], "low": -p["high"], "high": -p["low"]}
    raise KeyError(f"no paired difference of {a!r} and {b!r} on {set_name}")


def out_of_domain_answer(result: dict) -> str:
    """Two sentences for the README's answers: the fine-tuned head beyond tweets, and WiSE-FT."""
    names = list(result["compared"])
    frozen, tuned = names[0], names[-1]
    parts = []
    for s in ("uci_sentences", "airline_sentiment"):
        m, d = result["sets"][s]["models"][tuned], _difference(result, s, tuned, frozen)
        parts.append(f"{SHORT[s]} {100 * m['value']:.1f}% (95% CI {100 * m['low']:.1f}–{100 * m['high']:.1f}), "
                     f"{100 * d['mean']:+.1f} points against the frozen encoder with a logistic-regression head "
                     f"(95% CI {100 * d['low']:+.1f} to {100 * d['high']:+.1f}, "
                     f"{analysis.VERDICT_WORDS[analysis.verdict(d['low'], d['high'])]})")
    text = ("Out of domain (evaluation only), its sentiment head scores " + "; ".join(parts) +
            f"; it calls {100 * result['sets']['uci_sentences']['models'][tuned]['neutral_share']:.1f}% of the review "
            f"sentences and {100 * result['news_called_neutral'][tuned]:.0f}% of AG News texts neutral.")
    chosen = result["chosen_alpha"]
    if len(names) == 3:
        middle = names[1]
        diffs = [(SHORT[s], _difference(result, s, middle, tuned)) for s in SET_NAMES]
        text += (f" Weight-space ensembling with the frozen encoder (WiSE-FT) at alpha {chosen:.1f}, chosen on "
                 "validation, against the fine-tuned model: " + "; ".join(
                     f"{n} {100 * d['mean']:+.1f} points ({analysis.VERDICT_WORDS[analysis.verdict(d['low'], d['high'])]})"
                     for n, d in diffs) + ".")
    else:
        text += (f" Weight-space ensembling with the frozen encoder (WiSE-FT) does not help here: validation "
                 f"picks alpha {chosen:.1f}, {'the fine-tuned model itself' if chosen == 1.0 else 'the frozen encoder'}.")
    return text


def report_data(result: dict | None) -> dict | None:
    """The report's out-of-domain table: one row per compared model, the cells as the README shows them."""
    if not result:
        return None
    sets = result["sets"]
    return {"chosen_alpha": f"{result['chosen_alpha']:.1f}", "reps": result["bootstrap_reps"],
            "n_uci": f"{sets['uci_sentences']['n']:,}", "n_airline": f"{sets['airline_sentiment']['n']:,}",
            "answer": out_of_domain_answer(result),
            "rows": [{"model": name, "cells": [_cell(sets[s]["models"][name]) for s in SET_NAMES],
                      "uci_neutral": f"{100 * sets['uci_sentences']['models'][name]['neutral_share']:.1f}%",
                      "news_neutral": f"{100 * result['news_called_neutral'][name]:.1f}%"}
                     for name in result["compared"]]}
