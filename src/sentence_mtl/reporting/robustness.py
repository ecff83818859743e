"""In and out of domain (``results/robustness.json``): the README's table and the WiSE-FT figure."""

from __future__ import annotations


from ..experiments import analysis

SET_NAMES = {"topic": "AG News test (accuracy)", "sentiment": "TweetEval test (macro recall)",
             "uci_sentences": "review sentences (pos. vs neg.)", "airline_sentiment": "airline tweets (macro recall)"}
SHORT = {"topic": "AG News", "sentiment": "TweetEval", "uci_sentences": "review sentences",
         "airline_sentiment": "airline tweets"}


# Our targets for the saved model (set against RoBERTa-base's 71.3 on TweetEval, Barbieri et al. 2020,
# a model 5x larger, and against the AG News accuracy of the baseline recipe).
TEST_TARGETS = {"topic": 0.915, "sentiment": 0.70}
OUT_OF_DOMAIN = ("uci_sentences", "airline_sentiment")


def models_in_order(result: dict) -> list[str]:
    """Frozen encoder, baseline recipe (when scored), WiSE-FT (when chosen), the saved model last."""
    names = list(result["compared"])
    if result.get("baseline"):
        names.insert(1, result["baseline"]["name"])
    return names


def _verdict_words(d: dict) -> str:
    return analysis.VERDICT_WORDS[analysis.verdict(d["low"], d["high"])]


def recipe_choice(result: dict) -> str:
    """The recipe chosen on validation, and what the saved model's own run chose (checkpoint or average)."""
    if not result.get("baseline") or "validation" not in result:
        return ""
    tuned, base = models_in_order(result)[-1], result["baseline"]["name"]
    val, training = result["validation"], result.get("training") or {}
    text = ""
    if training.get(tuned) and training.get(base):
        def what(summary):
            n = summary["train_examples"]
            return (f"{n.get('topic', 0):,} AG News and {n.get('sentiment', 0):,} TweetEval texts, {summary['steps']:,} steps "
                    f"({summary['train_seconds'] / 60:.0f} min)")
        text = f"The saved model trained on {what(training[tuned])}; the baseline recipe on {what(training[base])}. "
    keep = ("`configs/multitask.json` keeps the new recipe" if val[tuned]["mean"] > val[base]["mean"]
            else "the baseline recipe should be kept")
    text += (f"On validation (mean of AG News accuracy and TweetEval macro recall on items held out of training) the "
             f"saved model scores {100 * val[tuned]['mean']:.1f} against {100 * val[base]['mean']:.1f} for the "
             f"baseline recipe, so {keep}")
    average = (training.get(tuned) or {}).get("checkpoint_average")
    if average:
        text += (f". Checkpoint averaging (Izmailov et al. 2018) of steps {', '.join(map(str, average['snapshot_steps']))}: "
                 f"validation {100 * average['average_validation_metric']:.2f} against "
                 f"{100 * average['best_checkpoint_validation_metric']:.2f} for the run's best checkpoint, so the "
                 f"{average['kept']} is saved")
    return text + "."


def targets_sentence(result: dict) -> str:
    """Each target for the saved model, met or missed, with the measured number."""
    names = models_in_order(result)
    tuned, frozen = names[-1], names[0]
    sets = result["sets"]
    parts = [f"{SHORT[t]} at least {100 * goal:.1f}: {100 * sets[t]['models'][tuned]['value']:.1f}, "
             f"{'met' if sets[t]['models'][tuned]['value'] >= goal else 'missed'}" for t, goal in TEST_TARGETS.items()]
    for s in OUT_OF_DOMAIN:
        d = _difference(result, s, tuned, frozen)
        parts.append(f"{SHORT[s]} at least the frozen encoder: {100 * d['mean']:+.1f} points "
                     f"({'met' if d['mean'] >= 0 else 'missed'})")
    if result.get("baseline"):
        base = result["baseline"]["name"]
        for s in OUT_OF_DOMAIN:
            d = _difference(result, s, tuned, base)
            ahead = analysis.verdict(d["low"], d["high"]) == "ahead"
            parts.append(f"{SHORT[s]} better than the baseline recipe: {100 * d['mean']:+.1f} points "
                         f"(95% CI {100 * d['low']:+.1f} to {100 * d['high']:+.1f}; "
                         f"{'met' if ahead else 'met in mean only, not separated' if d['mean'] > 0 else 'missed'})")
    return ("Targets for the saved model (ours; RoBERTa-base, 5x larger, reports 71.3 on TweetEval, Barbieri et "
            "al. 2020): " + "; ".join(parts) + ".")


def _cell(m: dict) -> str:
    return f"{100 * m['value']:.1f} ({100 * m['low']:.1f}–{100 * m['high']:.1f})"


def robustness_table(result: dict) -> str:
    sets, models = result["sets"], models_in_order(result)
    uci, airline = sets["uci_sentences"], sets["airline_sentiment"]
    lines = ["### In and out of domain (`results/robustness.json`)", "",
             "The sentiment head meets other text than tweets. Out of domain, evaluation only: "
             f"{uci['n']:,} Amazon, IMDb and Yelp review sentences (UCI, Kotzias et al. 2015; positive or "
             "negative, scored on the positive-vs-negative decision, with the share called *neutral* beside it) "
             f"and {airline['n']:,} airline customer tweets (Twitter US Airline, test split, 3 classes). "
             "WiSE-FT (Wortsman et al. 2022) interpolates the weights between the frozen encoder with "
             "logistic-regression heads fitted on the same training texts (alpha 0) and the fine-tuned model "
             f"(alpha 1); alpha {result['chosen_alpha']:.1f} has the best mean validation metric of the two "
             "tasks (the test and out-of-domain sets played no part)"
             + (". The baseline recipe is `configs/baseline_recipe.json` (less data per task, trained by "
                "`make train-baseline`)" if result.get("baseline") else "")
             + f". 95% intervals from a bootstrap over items ({result['bootstrap_reps']} resamples, the same for "
             "every model). " + recipe_choice(result) + " LP-FT (Kumar et al. 2022) is compared with full "
             "fine-tuning in the freezing study (notebook 03, the answer to question 3), not re-run at this size "
             "within `make train`'s 30-minute budget.", "",
             "| model | " + " | ".join(SET_NAMES.values()) + " | review sentences called neutral | news called neutral |",
             "|---|" + "---|" * (len(SET_NAMES) + 2)]
    for name in models:
        cells = [_cell(sets[s]["models"][name]) for s in SET_NAMES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * uci['models'][name]['neutral_share']:.1f}% | "
                     f"{100 * result['news_called_neutral'][name]:.1f}% |")
    tuned = models[-1]
    lines += ["", f"Paired differences, {tuned} minus each other model (points, 95% interval over items):", ""]
    for s in SET_NAMES:
        parts = []
        for other in models[:-1]:
            d = _difference(result, s, tuned, other)
            v = analysis.verdict(d["low"], d["high"])
            parts.append(f"against {other} {100 * d['mean']:+.1f} ({100 * d['low']:+.1f} to "
                         f"{100 * d['high']:+.1f}, {analysis.VERDICT_WORDS[v]})")
        lines.append(f"- {SHORT[s]}: " + "; ".join(parts) + ".")
    lines += ["", targets_sentence(result)]
    lines += ["", "*News called neutral*: the share of AG News test texts the sentiment head calls neutral "
                  "(there is no gold sentiment for them: news reports events, many with a tone of their own).", "",
              _curve_sentence(result)]
    lines += ["", "![WiSE-FT](figures/robustness_wise_ft.png)"]
    return "\n".join(lines)


def _difference(result: dict, set_name: str, a: str, b: str) -> dict:
    """``a`` minus ``b`` on one set, from the stored paired bootstrap (either order)."""
    for p in result["sets"][set_name]["paired"]:
        if (p["a"], p["b"]) == (a, b):
            return p
        if (p["a"], p["b"]) == (b, a):
            return {"a": a, "b": b, "mean": -p["mean"], "low": -p["high"], "high": -p["low"]}
    raise KeyError(f"no paired difference of {a!r} and {b!r} on {set_name}")


def _curve_sentence(result: dict) -> str:
    """What the WiSE-FT curve shows beside the chosen alpha (validation-chosen; the rest is shown only)."""
    chosen = result["chosen_alpha"]
    at = {c["alpha"]: c for c in result["alphas"]}
    gains = []
    for s in ("uci_sentences", "airline_sentiment"):
        best = max(result["alphas"], key=lambda c: c["out_of_domain"][s]["value"])
        gain = best["out_of_domain"][s]["value"] - at[chosen]["out_of_domain"][s]["value"]
        gains.append(f"{SHORT[s]} {100 * gain:+.1f} points at alpha {best['alpha']:.1f}")
    which = ("the fine-tuned model itself" if chosen == 1.0 else "the frozen encoder" if chosen == 0.0
             else "an ensemble")
    return (f"WiSE-FT: validation picks alpha {chosen:.1f}, {which}. Along the curve the best out-of-domain "
            f"scores differ from it by " + "; ".join(gains) + " (one run, no interval; read off the "
            "out-of-domain sets, so not a choice we may make).")


def report_data(result: dict | None) -> dict | None:
    """The report's out-of-domain table: one row per compared model, the cells as the README shows them."""
    if not result:
        return None
    sets = result["sets"]
    return {"chosen_alpha": f"{result['chosen_alpha']:.1f}", "reps": result["bootstrap_reps"],
            "n_uci": f"{sets['uci_sentences']['n']:,}", "n_airline": f"{sets['airline_sentiment']['n']:,}",
            "rows": [{"model": name, "cells": [_cell(sets[s]["models"][name]) for s in SET_NAMES],
                      "uci_neutral": f"{100 * sets['uci_sentences']['models'][name]['neutral_share']:.1f}%",
                      "news_neutral": f"{100 * result['news_called_neutral'][name]:.1f}%"}
                     for name in models_in_order(result)]}
