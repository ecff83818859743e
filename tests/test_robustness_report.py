"""The in- and out-of-domain tables and report rows from a synthetic result."""

import itertools

import pytest

from sentence_mtl.reporting import robustness as report

FROZEN, BASE, TUNED = "frozen encoder + logistic regression", "baseline recipe (fine-tuned)", "fine-tuned (make train)"
# set -> model -> value; differences are given with their 95% interval below
VALUES = {"topic": {FROZEN: 0.88, BASE: 0.916, TUNED: 0.92}, "sentiment": {FROZEN: 0.64, BASE: 0.675, TUNED: 0.69},
          "uci_sentences": {FROZEN: 0.87, BASE: 0.90, TUNED: 0.91},
          "airline_sentiment": {FROZEN: 0.64, BASE: 0.73, TUNED: 0.72}}


def _result(baseline=True, average_kept="average"):
    names = [FROZEN, BASE, TUNED] if baseline else [FROZEN, TUNED]
    sets = {}
    for s, values in VALUES.items():
        models = {n: {"value": values[n], "low": values[n] - 0.01, "high": values[n] + 0.01, "neutral_share": 0.05}
                  for n in names}
        paired = [{"a": a, "b": b, "mean": values[a] - values[b], "low": values[a] - values[b] - 0.005,
                   "high": values[a] - values[b] + 0.005} for a, b in itertools.combinations(names, 2)]
        sets[s] = {"n": 1000, "models": models, "paired": paired}
    curve = [{"alpha": a, "validation": {"topic": 0.9, "sentiment": 0.7 + a / 100}, "validation_mean": 0.8 + a / 100,
              "out_of_domain": {"uci_sentences": {"value": 0.9}, "airline_sentiment": {"value": 0.7 + a / 50}}}
             for a in (0.0, 0.5, 1.0)]
    summary = {"train_examples": {"topic": 23971, "sentiment": 21000}, "steps": 1100, "train_seconds": 1400,
               "checkpoint_average": {"snapshot_steps": [660, 880, 1100], "average_validation_metric": 0.83,
                                      "best_checkpoint_validation_metric": 0.82, "kept": average_kept}}
    result = {"alphas": curve, "chosen_alpha": 1.0, "compared": {FROZEN: 0.0, TUNED: 1.0}, "bootstrap_reps": 1000,
              "sets": sets, "news_called_neutral": {n: 0.5 for n in names},
              "baseline": {"model": "models/baseline_recipe", "name": BASE} if baseline else None,
              "validation": {TUNED: {"mean": 0.83}, BASE: {"mean": 0.81}, FROZEN: {"mean": 0.77}},
              "training": {TUNED: summary, BASE: {**summary, "checkpoint_average": None, "steps": 875}}}
    return result


def test_the_baseline_sits_between_the_frozen_encoder_and_the_saved_model():
    assert report.models_in_order(_result()) == [FROZEN, BASE, TUNED]
    assert report.models_in_order(_result(baseline=False)) == [FROZEN, TUNED]


def test_paired_difference_reads_either_order():
    d = report.difference(_result(), "uci_sentences", TUNED, FROZEN)
    assert round(100 * d["mean"], 1) == 4.0 and d["low"] < d["mean"] < d["high"]
    back = report.difference(_result(), "uci_sentences", FROZEN, TUNED)
    assert back["mean"] == -d["mean"] and back["low"] == -d["high"]


@pytest.mark.parametrize("baseline", [True, False])
def test_table_and_report_rows_cover_every_model(baseline):
    result = _result(baseline)
    from sentence_mtl.reporting.tables import robustness

    table = robustness(result)
    names = report.models_in_order(result)
    assert all(f"| {n} |" in table["robustness"] for n in names)
    assert (f"{TUNED} minus {BASE}" in table["robustness_paired"]) == baseline
    assert [row["model"] for row in report.report_data(result)["rows"]] == names
