"""The claims of the freezing study (notebook 03) and of the multi-task loop (notebook 04)."""

from __future__ import annotations

from pathlib import Path
from statistics import median

from ..experiments import analysis
from ..experiments.analysis import interval, paired
from .claim import claim, difference, load, mean_claim

CLASSIFICATION = ("topic", "sentiment")

FREEZE_SIZES = (8, 64, 512)
FREEZE_STRATEGIES = (
    "label_prior",
    "frozen_backbone",
    "self_training",
    "top2_unfrozen",
    "full_finetune",
    "lp_ft",
    "setfit",
    "anchored_contrastive",
)


def freezing(results: Path) -> dict:
    records = [r for r in analysis.without_headline(load(results, "03_freezing_strategies") or [])
               if r["task"] in CLASSIFICATION]
    src = "results/03_freezing_strategies.json"
    out: dict = {}
    if not records:
        return out
    flat = [r for r in records if not r.get("stage")]
    for task in CLASSIFICATION:
        for k in FREEZE_SIZES:
            for s in FREEZE_STRATEGIES:
                out[f"freeze_{s}_{task}_{k}"] = mean_claim(flat, s, task, k, source=src)
                if s != "frozen_backbone":
                    out[f"freeze_{s}_vs_frozen_{task}_{k}"] = difference(
                        paired(flat, s, "frozen_backbone", task, k),
                        f"{src}: {s} minus frozen_backbone, {task}, {k}/class, paired by seed",
                        items=_n(flat, task),
                    )
                seconds = median(_values(flat, s, task, k, "train_seconds") or [float("nan")])
                if seconds == seconds:
                    out[f"freeze_{s}_seconds_{task}_{k}"] = claim(
                        seconds, unit="seconds", source=f"{src}: median train_seconds"
                    )
            out[f"freeze_self_training_full_{task}_{k}"] = mean_claim(
                flat,
                "self_training",
                task,
                k,
                source=src + " (full_test_value)",
                key="full_test_value",
                items_key="n_full_test",
            )
            out[f"freeze_label_prior_vs_full_finetune_{task}_{k}"] = difference(
                paired(flat, "label_prior", "full_finetune", task, k),
                f"{src}: label_prior minus full_finetune, {task}, {k}/class",
                items=_n(flat, task),
            )
            out[f"freeze_lp_ft_vs_full_finetune_{task}_{k}"] = difference(
                paired(flat, "lp_ft", "full_finetune", task, k),
                f"{src}: lp_ft minus full_finetune, {task}, {k}/class",
            )
    for tag, k in zip(("small", "mid", "large"), FREEZE_SIZES):
        out[f"freeze_k_{tag}"] = claim(k, unit="count", source="claims_tasks.FREEZE_SIZES (the study's grid)")
    trained = [r for r in flat if r["strategy"] not in ("zero_shot", "majority_class")]
    seeds = analysis.summarize(trained, by=("task", "strategy", "n_per_class"))["seeds"]
    out["freeze_seeds_min"] = claim(int(seeds.min()), unit="count", source=src)
    out["freeze_seeds_max"] = claim(int(seeds.max()), unit="count", source=src)
    for task in CLASSIFICATION:
        out[f"freeze_items_{task}"] = claim(_n(flat, task), unit="count", source=f"{src}: n_test")
    lost = analysis.forgetting(records)
    lost = lost[lost.strategy == "sequential_trainable_backbone"]["forgetting"].tolist()
    if lost:
        mean, low, high = interval(lost)
        out["freeze_head_frozen_change"] = claim(
            -mean,
            -high,
            -low,
            unit="points",
            seeds=len(lost),
            source=f"{src}: stage after_sentiment minus after_topic, " "sequential_trainable_backbone",
        )
    return out


def _values(records, strategy, task, k, key):
    return [
        r[key]
        for r in records
        if r["strategy"] == strategy
        and r["task"] == task
        and r["n_per_class"] == k
        and r.get(key) is not None
    ]


def _n(records, task):
    return next(r["n_test"] for r in records if r["task"] == task and r.get("n_test"))


def training_loop(results: Path) -> dict:
    records = [r for r in analysis.without_headline(load(results, "04_training_loop") or [])
               if r["task"] in CLASSIFICATION]
    src = "results/04_training_loop.json"
    if not records:
        return {}
    configs = [s for s in dict.fromkeys(r["strategy"] for r in records) if not s.startswith("single_task")]
    val = {s: [r["validation_metric"] for r in records if r["strategy"] == s] for s in configs}
    chosen = max(configs, key=lambda s: sum(val[s]) / len(val[s]))
    out = {"loop_chosen": claim(chosen, unit="name", source=f"{src}: highest mean validation_metric")}
    k = {
        t: next(r["n_per_class"] for r in records if r["strategy"] == chosen and r["task"] == t)
        for t in CLASSIFICATION
    }
    base = "proportional+equal"
    out["loop_chosen_validation"] = claim(
        sum(val[chosen]) / len(val[chosen]), unit="score", source=f"{src}: mean validation_metric of {chosen}"
    )
    rows = [
        {
            "config": s,
            **{
                t: difference(
                    _across(records, s, base, t), f"{src}: {s} minus {base}, {t}", items=_n(records, t)
                )
                for t in CLASSIFICATION
            },
        }
        for s in configs
        if s != base
    ]
    out["loop_difference_rows"] = claim(rows, unit="rows", source=f"{src}: each configuration minus {base}")
    diffs = [_across(records, s, base, t) for s in configs if s != base for t in CLASSIFICATION]
    out["loop_differences"] = claim(
        len(diffs), unit="count", source=f"{src}: each configuration minus {base}"
    )
    out["loop_ties"] = claim(sum(d["verdict"] == "tie" for d in diffs if d), unit="count", source=src)
    for t in CLASSIFICATION:
        out[f"loop_chosen_{t}"] = mean_claim(records, chosen, t, k[t], source=src)
        for name, config in (("chosen", chosen), ("base", base)):
            out[f"loop_{name}_vs_single_{t}"] = difference(
                _across(records, config, f"single_task_{t}", t),
                f"{src}: {config} minus single_task_{t}, paired by seed",
                items=_n(records, t),
            )
    out["loop_base"] = claim(base, unit="name", source=src)
    return out


def _across(records, a, b, task):
    """Paired by seed between two configurations that may record different ``n_per_class``."""
    k = next((r["n_per_class"] for r in records if r["strategy"] == a and r["task"] == task), None)
    aligned = [dict(r, n_per_class=k) if r["strategy"] == b else r for r in records if r["task"] == task]
    return paired(aligned, a, b, task, k)
