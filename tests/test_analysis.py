"""The analysis layer's intervals: a paired difference is judged by its own interval."""

import math

import pytest

from sentence_mtl.experiments.analysis import interval, paired
from sentence_mtl.reporting.claims import spearman_interval


def record(strategy, seed, value, n_test=800):
    return {"task": "topic", "strategy": strategy, "seed": seed, "n_per_class": 8, "value": value, "n_test": n_test}


def test_interval_of_one_run_is_the_binomial_interval():
    mean, low, high = interval([0.9], n_test=10_000)
    assert mean == 0.9 and math.isclose(high - mean, 1.959964 * math.sqrt(0.9 * 0.1 / 10_000))


def test_interval_widens_with_seed_spread():
    tight = interval([0.80, 0.801, 0.802], n_test=800)
    loose = interval([0.70, 0.80, 0.90], n_test=800)
    assert (loose[2] - loose[1]) > 5 * (tight[2] - tight[1])


def test_paired_difference_pairs_by_seed_and_calls_ties():
    records = [record("a", s, 0.80 + 0.05 * s) for s in range(3)] + [record("b", s, 0.78 + 0.05 * s) for s in range(3)]
    d = paired(records, "a", "b", "topic", 8)
    assert math.isclose(d["mean"], 0.02) and d["seeds"] == 3
    # the seed effect (+5 points per seed) cancels in the pairs; the verdict rests on the item noise
    assert d["verdict"] == "tie"  # 2 points on 800 items is inside the interval
    big = [record("a", s, 0.90) for s in range(3)] + [record("b", s, 0.80) for s in range(3)]
    assert paired(big, "a", "b", "topic", 8)["verdict"] == "ahead"
    assert paired(big, "b", "a", "topic", 8)["verdict"] == "behind"
    assert paired(big, "a", "missing", "topic", 8) is None


def test_spearman_interval_is_asymmetric_inside_minus_one_to_one():
    rho, low, high = spearman_interval(0.95, 100)
    assert -1 < low < rho < high < 1 and (high - rho) < (rho - low)


def test_strategy_families_group_by_kind_and_put_peers_last():
    from sentence_mtl.strategies import families

    grouped = families(["label_prior", "frozen_backbone", "top2_unfrozen", "lp_ft", "setfit"])
    assert list(grouped) == ["whole network frozen", "backbone frozen", "top blocks trained", "whole encoder trained"]
    assert grouped["whole encoder trained"] == ["lp_ft", "setfit"]


def test_figures_draw_from_records(tmp_path):
    from sentence_mtl.reporting import plots
    from sentence_mtl.reporting.architecture import architecture_figure

    architecture_figure({"topic": 4, "sentiment": 3}, name="arch", figures_dir=tmp_path)
    records = [record(s, seed, 0.8 + 0.01 * seed) | {"metric": "accuracy"} for s in ("a", "b") for seed in range(3)]
    plots.interval_dots(records, ["a", "b"], ["topic"], "t", name="dots", figures_dir=tmp_path)
    assert (tmp_path / "arch.png").stat().st_size > 1000 and (tmp_path / "dots.png").stat().st_size > 1000


def _retrieval_records():
    rows = [{"strategy": "bm25", "metric": "ndcg@10", "value": 0.67, "n_test": 300},
            {"strategy": "pretrained", "metric": "ndcg@10", "value": 0.645, "n_test": 300}]
    # recipe "a" is better on test, "b" on validation: validation must choose "b"
    for seed, (a_test, a_val, b_test, b_val) in enumerate([(0.70, 0.60, 0.66, 0.65), (0.71, 0.61, 0.67, 0.66)]):
        for name, test, val in (("a", a_test, a_val), ("b", b_test, b_val)):
            rows.append({"strategy": name, "metric": "ndcg@10", "value": test, "seed": seed, "n_test": 300,
                         "val_ndcg10": val, "train_seconds": 60.0 if name == "a" else 180.0,
                         "run_id": f"{name}{seed}", **({"best_epoch": 2} if name == "b" else {})})
            rows.append({"strategy": f"hybrid_{name}", "metric": "ndcg@10", "value": test + 0.05, "seed": seed,
                         "n_test": 300, "run_id": f"{name}{seed}", "fusion_dense_weight": 0.6,
                         "fusion_val_ndcg10": {"0.6": val}})
    return rows


def test_retrieval_summary_chooses_the_recipe_on_validation_and_pairs_by_seed():
    from sentence_mtl.experiments.analysis import retrieval_summary

    summary = retrieval_summary(_retrieval_records())
    assert summary["chosen"] == "b" and summary["first"] == "a"
    b = summary["recipes"]["b"]
    assert b["hybrid"] == "hybrid_b" and b["best_epochs"] == [2, 2] and b["seconds"] == 180.0
    assert b["minus_first"][0] == pytest.approx(-0.04) and b["hybrid_weights"] == [0.6, 0.6]
    assert summary["recipes"]["a"]["test"][0] == pytest.approx(0.705)
    assert retrieval_summary([r for r in _retrieval_records() if r["strategy"] != "bm25"]) is None


def _predicting(strategy, seed, predictions, value, metric="accuracy"):
    from sentence_mtl.results import encode_labels

    return {"strategy": strategy, "task": "topic", "n_per_class": 8, "seed": seed, "metric": metric,
            "value": value, "n_test": len(predictions), "predictions": encode_labels(predictions)}


def test_items_both_strategies_get_right_cancel_in_the_paired_bootstrap():
    """Two strategies that differ on 1.5% of 2,000 items, the same way on every seed: the
    independent-errors interval holds zero, the two-level bootstrap over seeds and items does not."""
    import numpy as np

    from sentence_mtl.experiments import analysis

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    records = []
    for seed in range(5):
        base = np.where(rng.random(2000) < 0.8, labels, (labels + 1) % 4)  # about 80% right
        better = base.copy()
        flip = np.flatnonzero(base != labels)[:30]
        better[flip] = labels[flip]
        records += [_predicting("b", seed, base, float((base == labels).mean())),
                    _predicting("a", seed, better, float((better == labels).mean()))]
    items = analysis.paired_items(records, "a", "b", "topic", 8, labels, reps=500)
    independent = analysis.paired(records, "a", "b", "topic", 8)
    assert abs(items["mean"] - 0.015) < 1e-9 and items["verdict"] == "ahead"
    assert independent["verdict"] == "tie" and independent["low"] < items["low"]
    assert items["method"] == analysis.BOOTSTRAP_METHOD and items["seeds"] == 5


def test_macro_recall_is_bootstrapped_per_class_and_identical_runs_tie():
    import numpy as np

    from sentence_mtl.evaluation import benchmark_metric
    from sentence_mtl.experiments import analysis

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 600)
    predictions = np.where(rng.random(600) < 0.6, labels, rng.integers(0, 3, 600))
    ones = np.ones(600)
    mine = analysis.per_seed_metrics((predictions == labels)[None].astype(float), labels, ones, "macro_recall")
    assert abs(mine[0] - benchmark_metric("sentiment", labels, predictions)[1]) < 1e-12
    records = [_predicting(s, 0, predictions, 0.5, "macro_recall") for s in ("a", "b")]
    same = analysis.paired_items(records, "a", "b", "topic", 8, labels, reps=200)
    assert same["mean"] == 0 and same["low"] == 0 == same["high"] and same["verdict"] == "tie"
    with pytest.raises(ValueError, match="do not cover"):
        analysis.paired_items(records, "a", "b", "topic", 8, labels[:-1], reps=10)


def test_shared_item_resamples_give_each_comparison_its_own_runs():
    """One ``ItemResamples`` serves every comparison on a test set; the same strategy at two sizes
    (different predictions) must not share its cached metrics."""
    import numpy as np

    from sentence_mtl.experiments import analysis

    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 900)
    records = []
    for k, right in ((8, 0.5), (64, 0.9)):
        for seed in range(3):
            for name, share in (("a", right), ("b", 0.7)):
                guess = np.where(rng.random(900) < share, labels, (labels + 1) % 3)
                records.append({**_predicting(name, seed, guess, float((guess == labels).mean())), "n_per_class": k})
    shared = analysis.ItemResamples(labels, reps=300)
    for k in (8, 64):
        alone = analysis.paired_items(records, "a", "b", "topic", k, labels, reps=300)
        assert analysis.paired_items(records, "a", "b", "topic", k, shared) == alone
    assert analysis.paired_items(records, "a", "b", "topic", 8, shared)["verdict"] == "behind"
    assert analysis.paired_items(records, "a", "b", "topic", 64, shared)["verdict"] == "ahead"


def _headline(strategy, seed, value, val_value, seconds, task="topic", k=8):
    return {"headline": True, "task": task, "n_per_class": k, "strategy": strategy, "seed": seed,
            "value": value, "val_value": val_value, "train_seconds": seconds, "n_test": 7600, "n_val": 800}


FOUR = ("full_finetune", "frozen_backbone", "label_prior", "setfit")


def test_recommendation_takes_the_cheapest_strategy_not_behind_the_best_on_validation():
    from sentence_mtl.experiments.headline import recommendation

    records = []
    for seed in range(10):
        wobble = 0.002 * (seed % 3)
        records += [_headline("full_finetune", seed, 0.880 + wobble, 0.90, 300.0 + seed),
                    # level with the best on validation over seeds (a tie), and the cheapest such: kept
                    _headline("frozen_backbone", seed, 0.876 + wobble, 0.895 + 0.01 * (-1) ** seed, 2.0),
                    _headline("label_prior", seed, 0.700 + wobble, 0.70, 0.5),  # cheaper but behind
                    _headline("setfit", seed, 0.885 + wobble, 0.89, 90.0)]
    records.append({**_headline("label_prior", 0, 0.99, 0.99, 0.1), "headline": False})  # ignored
    rows = {(r["task"], r["k"]): r for r in recommendation(records, strategies=FOUR, seeds=range(10))}
    topic = rows["topic", 8]
    assert topic["decided"] and topic["best_on_validation"] == "full_finetune"
    assert topic["chosen"] == "frozen_backbone" and topic["train_seconds"] == 2.0
    assert topic["difference"]["verdict"] == "tie" and topic["difference"]["mean"] < 0
    assert topic["low"] < topic["value"] < topic["high"]
    assert rows["sentiment", 64] == {"task": "sentiment", "k": 64, "decided": False, "runs": 0, "runs_needed": 40}
    incomplete = recommendation(records[:-2], strategies=FOUR, seeds=range(10))[0]  # a seed of setfit missing
    assert not incomplete["decided"] and incomplete["runs"] == 39


def test_recommendation_keeps_the_best_when_everything_cheaper_is_behind():
    from sentence_mtl.experiments.headline import recommendation

    records = [r for seed in range(10) for r in (_headline("lp_ft", seed, 0.9, 0.9, 100.0),
                                                 _headline("frozen_backbone", seed, 0.6, 0.6, 1.0))]
    row = recommendation(records, cells=[("topic", 8)], strategies=("lp_ft", "frozen_backbone"), seeds=range(10))[0]
    assert row["chosen"] == row["best_on_validation"] == "lp_ft" and row["difference"]["mean"] == 0.0


def test_the_validation_difference_is_paired_by_seed_without_an_item_term():
    """Every strategy is scored on the same validation items: a steady half-point gap over ten
    seeds is behind, though both strategies' binomial terms on 800 items would hide it."""
    from sentence_mtl.experiments.analysis import paired
    from sentence_mtl.experiments.headline import paired_on_validation

    records = [r for seed in range(10) for r in (_headline("lp_ft", seed, 0.9, 0.900 + 0.001 * seed, 100.0),
                                                 _headline("frozen_backbone", seed, 0.9, 0.895 + 0.001 * seed, 1.0))]
    assert paired_on_validation(records, "frozen_backbone", "lp_ft", "topic", 8)["verdict"] == "behind"
    as_independent = [{**r, "value": r["val_value"], "n_test": r["n_val"]} for r in records]
    assert paired(as_independent, "frozen_backbone", "lp_ft", "topic", 8)["verdict"] == "tie"


def test_recommendation_never_reads_the_test_set_to_choose():
    """A cheap strategy level with the best on validation is chosen even when it is far behind on
    test: the test difference is reported beside the choice, not used for it."""
    from sentence_mtl.experiments.headline import recommendation

    records = [r for seed in range(10) for r in (_headline("lp_ft", seed, 0.90, 0.80 + 0.001 * seed, 100.0),
                                                 _headline("frozen_backbone", seed, 0.60,
                                                           0.795 + 0.001 * seed + 0.01 * (-1) ** seed, 1.0))]
    row = recommendation(records, cells=[("topic", 8)], strategies=("lp_ft", "frozen_backbone"), seeds=range(10))[0]
    assert row["best_on_validation"] == "lp_ft" and row["chosen"] == "frozen_backbone"
    assert row["val_difference"]["verdict"] == "tie" and row["difference"]["verdict"] == "behind"


def test_forgetting_with_a_frozen_head_is_paired_on_the_runs_own_items():
    """Notebook 03's one-head-frozen measurement from headline records: the topic predictions
    after the sentiment stage against the same run's after the topic stage, seed by seed."""
    import numpy as np

    from sentence_mtl.experiments import analysis
    from sentence_mtl.reporting.claims_headline import _forgetting
    from sentence_mtl.results import encode_labels

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 800)
    records = []
    for seed in range(4):
        before = np.where(rng.random(800) < 0.85, labels, (labels + 1) % 4)
        after = before.copy()
        after[np.flatnonzero(before == labels)[:40]] = (labels[np.flatnonzero(before == labels)[:40]] + 1) % 4
        for stage, guess in (("after_topic", before), ("after_sentiment", after)):
            records.append({"strategy": "sequential_trainable_backbone", "stage": stage, "task": "topic",
                            "n_per_class": 64, "seed": seed, "metric": "accuracy",
                            "value": float((guess == labels).mean()), "predictions": encode_labels(guess)})
    claim = _forgetting(records, {"topic": analysis.ItemResamples(labels, reps=300)}, "method", "src")
    assert abs(claim["value"] + 40 / 800) < 1e-12 and claim["verdict"] == "behind" and claim["seeds"] == 4
    assert _forgetting([], {}, "method", "src")["seeds"] == 0
