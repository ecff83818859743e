"""The report's sections: each task's summary cells, built from its result records.

A *cell* is ``{"mean", "std", "seeds", "text", "source": {"file", "where"}}``: ``where`` selects
the records it summarises, so ``tests/test_report.py`` can recompute every cell from the records.
"""

from __future__ import annotations

import math

from ..experiments.analysis import paired, percent_cell, retrieval_summary, same_test_items, summarize
from ..references import PUBLISHED
from ..strategies import STRATEGIES

# Facts about the data (not results), as data/README.md states them (Provenance and licences, Caveats);
# tests/test_report.py checks each one is stated there.
DATA_FACTS = {
    "ag_news_classes": 4,
    "tweeteval_classes": 3,
    "ag_news_train_rows": 23971,
    "ag_news_canonical_train_rows": 120000,
    "ag_news_val_rows": 1198,
    "ag_news_test_rows": 7600,
    "tweeteval_train_rows": 47453,
    "tweeteval_published_train_rows": 45615,
    "tweeteval_test_rows": 12284,
}
FULL_TEST = {"ag_news": DATA_FACTS["ag_news_test_rows"], "tweeteval_sentiment": DATA_FACTS["tweeteval_test_rows"]}
MODEL = {"name": "sentence-transformers/all-MiniLM-L6-v2", "layers": 6, "dim": 384}
HARDWARE = "2 CPU cores, no GPU"

# Bibliography keys (report/references.bib) for each published number of references.PUBLISHED.
CITATIONS = {
    "stsb_minilm_spearman": ["reimers2019", "cer2017"],
    "ag_news_8_setfit_minilm": ["tunstall2022", "zhang2015"],
    "ag_news_8_setfit_mpnet_templates": ["tunstall2022"],
    "ag_news_8_mpnet_logreg": ["tunstall2022"],
    "ag_news_64_mpnet_logreg": ["tunstall2022"],
    "ag_news_64_setfit_mpnet": ["tunstall2022"],
    "ag_news_64_roberta_large": ["tunstall2022"],
    "ag_news_full_distilbert": ["sanh2019", "zhang2015"],
    "ag_news_full_roberta_large": ["liu2019", "zhang2015"],
    "ag_news_full_xlnet_large": ["yang2019"],
    "tweeteval_svm": ["barbieri2020"],
    "tweeteval_fasttext": ["barbieri2020"],
    "tweeteval_roberta_base": ["barbieri2020"],
    "tweeteval_bertweet": ["nguyen2020", "barbieri2020"],
    "tweeteval_timelms": ["loureiro2022"],
    "scifact_bm25s_ndcg10": ["lu2024", "thakur2021"],
    "scifact_bm25_bge_base_rrf_ndcg10": ["quackir2025", "xiao2023"],
    "scifact_bge_small_ndcg10": ["xiao2023"],
}
# Published numbers whose primary source is not named in references.PUBLISHED (model papers cited).
UNTRACED = ("ag_news_full_distilbert", "ag_news_full_roberta_large")

STRATEGIES_03 = ("majority_class", "zero_shot", "nearest_centroid", "label_prior", "frozen_backbone", "self_training", "top1_unfrozen", "top2_unfrozen",
                 "full_finetune", "gradual_unfreezing", "llrd_0.95", "llrd_2.6", "lp_ft", "lora", "setfit",
                 "anchored_contrastive", "anchored_self_training", "sequential_frozen_backbone", "sequential_trainable_backbone", "sequential_lora")
STRATEGY_NOTES = {  # the registry's own summaries, plus the peer and the sequential variants
    **{name: strategy.summary for name, strategy in STRATEGIES.items()},
    "setfit": "contrastive fine-tuning on pairs, then a classifier (SetFit)",
    "sequential_frozen_backbone": "topic first; then sentiment head, backbone frozen",
    "sequential_trainable_backbone": "topic first; then sentiment head and backbone",
    "sequential_lora": "topic first; then sentiment head and LoRA adapters",
}
TASK_METRIC = {"topic": "accuracy", "sentiment": "macro recall"}


def matches(record: dict, where: dict) -> bool:
    """Whether a record belongs to a cell (a missing key counts as None, so ``stage: None``
    selects the records that have no stage)."""
    return all(record.get(k) == v for k, v in where.items())


# --------------------------------------------------------------------------- cells


def cell(records: list[dict], file: str, where: dict, scale: float = 100.0) -> dict | None:
    """Mean, std and number of seeds of the records selected by ``where``; None if none."""
    chosen = [r for r in records if matches(r, where)]
    if not chosen:
        return None
    row = summarize(chosen, by=("metric",)).iloc[0]
    mean, seeds = float(row["mean"]), int(row["seeds"])
    std = None if seeds < 2 or math.isnan(row["std"]) else float(row["std"])
    text = percent_cell(mean, std, seeds) if scale == 100.0 else f"{mean:.0f}"
    n_test = sorted({r["n_test"] for r in chosen if r.get("n_test") is not None})
    return {"mean": mean, "std": std, "seeds": seeds, "text": text,
            "n_test": n_test[0] if len(n_test) == 1 else n_test or None,
            "source": {"file": file, "where": where}}


def size_label(k) -> str:
    return "all" if k is None else str(k)


def count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def published(key: str) -> dict:
    value, source = PUBLISHED[key]
    text = f"{100 * value:.2f}"
    text = text[:-1] if text.endswith("0") else text  # 88.0, 83.1, 82.03, 95.55: as published
    return {"key": key, "value": value, "text": text, "source": source,
            "cite": CITATIONS.get(key, []), "untraced": key in UNTRACED}


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _sizes(records) -> list:
    sizes = set(r["n_per_class"] for r in records)
    return sorted((s for s in sizes if s is not None)) + ([None] if None in sizes else [])


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


# --------------------------------------------------------------------------- sections


def task1(records: list[dict]) -> dict:
    file = "01_sentence_embeddings"
    sts = [{"encoder": s, "cell": cell(records, file, {"task": "sts", "strategy": s})}
           for s in _ordered(r["strategy"] for r in records if r["task"] == "sts")]
    parity = next((r for r in records if r["task"] == "parity"), None)
    probe_records = [r for r in records if r["task"] in ("topic", "sentiment")]
    sizes = _sizes(probe_records)
    probes = []
    for task in _ordered(r["task"] for r in probe_records):
        for strategy in _ordered(r["strategy"] for r in probe_records if r["task"] == task):
            probes.append({"task": task, "features": strategy, "cells": [
                cell(records, file, {"task": task, "strategy": strategy, "n_per_class": k}) for k in sizes]})
    n_test = {t: next(r["n_test"] for r in probe_records if r["task"] == t) for t in
              _ordered(r["task"] for r in probe_records)}
    speed = [{"encoder": r["strategy"], "cell": cell(records, file, {"task": "throughput", "strategy": r["strategy"]},
                                                     scale=1.0),
              "ratio": f"{r['ratio_vs_sentence_transformers']:.2f}x" if "ratio_vs_sentence_transformers" in r else "–"}
             for r in records if r["task"] == "throughput"]
    sts_pairs = next((r["n_test"] for r in records if r["task"] == "sts"), None)
    best = max(sts, key=lambda row: row["cell"]["mean"]) if sts else None
    comparisons = []
    for task, k, strategy, keys in (("topic", 8, "frozen_minilm_logreg", ["ag_news_8_mpnet_logreg", "ag_news_8_setfit_minilm"]),
                                    ("topic", 64, "frozen_minilm_logreg", ["ag_news_64_mpnet_logreg", "ag_news_64_setfit_mpnet",
                                                                           "ag_news_64_roberta_large"]),
                                    ("sentiment", None, "frozen_minilm_logreg", ["tweeteval_svm", "tweeteval_fasttext"])):
        ours = cell(records, file, {"task": task, "strategy": strategy, "n_per_class": k})
        if ours:
            size = "whole training set" if k is None else f"{k} per class"
            comparisons.append({"what": f"{'AG News' if task == 'topic' else 'TweetEval'}, {size}",
                                "ours": ours, "ours_label": "frozen all-MiniLM-L6-v2 + logistic regression",
                                "published": [published(key) for key in keys]})
    return {"file": f"results/{file}.json", "sts": sts, "sts_pairs": count(sts_pairs),
            "sts_best": best["encoder"] if best else None,
            "parity": {"text": f"{parity['value']:.1e}", "value": parity["value"], "n": count(parity["n_test"])}
            if parity else None,
            "probe_sizes": [size_label(k) for k in sizes], "probes": probes,
            "probe_n_test": {t: count(n) for t, n in n_test.items()},
            "throughput": speed, "comparisons": comparisons,
            "published_sts": published("stsb_minilm_spearman")}


def task2(records: list[dict]) -> dict:
    file = "02_multitask_heads"
    rows = []
    for strategy in _ordered(r["strategy"] for r in records):
        for task in _ordered(r["task"] for r in records if r["strategy"] == strategy):
            chosen = [r for r in records if r["strategy"] == strategy and r["task"] == task]
            first = chosen[0]
            rows.append({"strategy": strategy, "task": task, "dataset": first.get("dataset", "?"),
                         "metric": first["metric"].replace("_", " "),
                         "cell": cell(records, file, {"strategy": strategy, "task": task}),
                         "chance": percent_cell(first["chance"]) if "chance" in first else "–",
                         "n_test": count(first.get("n_test", "?")),
                         "n_train": count(first["n_train"]) if "n_train" in first else "–"})
    return {"file": f"results/{file}.json", "rows": rows}


def task3(records: list[dict] | None) -> dict | None:
    if not records:
        return None
    file = "03_freezing_strategies"
    speedups = [{"name": r["strategy"], "value": f"{r['value']:.{1 if r['value'] >= 10 else 2}f}",
                 "target": f"{r['target']:g}", "met": r["value"] >= r["target"],
                 # what the cache removes from the step it replaces: the embeddings and lower blocks' forward
                 "removed": {"full_ms": f"{1000 * r['top2_step_full_forward_s']:.0f}",
                             "lower_ms": f"{1000 * r['top2_lower_forward_s']:.0f}"}
                 if r["strategy"] == "top2_step_ratio" and "top2_lower_forward_s" in r else None}
                for r in records if r["task"] == "cache_benchmark"]
    records = [r for r in records if r["task"] in TASK_METRIC]
    strategies = [s for s in STRATEGIES_03 if any(r["strategy"] == s for r in records)]
    strategies += [s for s in _ordered(r["strategy"] for r in records) if s not in strategies]
    sizes = _sizes([r for r in records if r["strategy"] != "zero_shot" and r["n_per_class"] != 0])

    def final(strategy: str, task: str, k) -> dict | None:
        """A strategy's final model: sequential variants after both stages, others as recorded."""
        where = {"task": task, "strategy": strategy, "n_per_class": k,
                 "stage": "after_sentiment" if strategy.startswith("sequential_") else None}
        return cell(records, file, where)

    tables = []
    for task in ("topic", "sentiment"):
        if not any(r["task"] == task for r in records):
            continue
        rows = []
        for strategy in strategies:
            if strategy == "zero_shot":
                continue
            cells = [final(strategy, task, k) for k in sizes]
            if any(cells):
                n_tests = sorted({r["n_test"] for r in records if r["strategy"] == strategy and r["task"] == task
                                  and r.get("n_test")})
                rows.append({"strategy": strategy, "cells": cells,
                             "n_test": " / ".join(count(n) for n in n_tests) or "?"})
        zero = cell(records, file, {"task": task, "strategy": "zero_shot"})
        tables.append({"task": task, "metric": TASK_METRIC[task], "rows": rows, "zero_shot": zero})

    recommendations = []
    for k in sizes:
        for task in ("topic", "sentiment"):
            # the sequential variants answer another question (forgetting), not "what to train at k"
            ranked = sorted(((c, s) for s in strategies if s not in ("zero_shot", "majority_class")
                             and not s.startswith("sequential_")
                             and (c := final(s, task, k))),
                            key=lambda pair: -pair[0]["mean"])
            if not ranked:
                continue
            (best, name) = ranked[0]
            labelled_only = next((pair for pair in ranked
                                  if not (pair[1] in STRATEGIES and STRATEGIES[pair[1]].reads_unlabeled)), None)
            seconds = [r["train_seconds"] for r in records if matches(r, best["source"]["where"])]
            ties = [other for c, other in ranked[1:] if abs(c["mean"] - best["mean"]) >= 1e-12
                    and (d := paired(records, name, other, task, k)) and d["verdict"] == "tie"]
            level = [other for c, other in ranked if abs(c["mean"] - best["mean"]) < 1e-12]  # an exact tie in mean
            recommendations.append({
                "size": size_label(k), "task": task, "metric": TASK_METRIC[task], "strategy": " = ".join(sorted(level)),
                "cell": best,
                "n_test": count(best["n_test"]), "train_seconds": f"{_mean(seconds):.0f}",
                "ties": ", ".join(ties) if len(ties) <= 3 else f"{len(ties)} strategies", "candidates": len(ranked),
                "labelled_only": "–" if labelled_only is None or labelled_only[1] == name
                else f"{labelled_only[1]} {labelled_only[0]['text']}"})

    costs = []
    for strategy in strategies:
        chosen = [r for r in records if r["strategy"] == strategy and r.get("stage") != "after_topic"]
        if not chosen:
            continue
        by_size = []
        for k in sizes:
            at = [r for r in chosen if r["n_per_class"] == k]
            by_size.append(f"{_mean(r['train_seconds'] for r in at):.0f}" if at else "–")
        params = max(int(r.get("trainable_params") or 0) for r in chosen)
        # memory training adds (activations + gradients + AdamW state, from the tensors); "–" without a gradient step
        memories = [float(r["training_memory_mb"]) for r in chosen if r.get("training_memory_mb") is not None]
        costs.append({"strategy": strategy, "note": STRATEGY_NOTES.get(strategy, ""),
                      "trainable_params": count(params), "training_memory_mb": f"{max(memories):.0f}" if memories else "–",
                      "seconds": by_size})

    forgetting = []
    for strategy in [s for s in strategies if s.startswith("sequential_")]:
        for k in sizes:
            where = {"task": "topic", "strategy": strategy, "n_per_class": k}
            before = cell(records, file, {**where, "stage": "after_topic"})
            after = cell(records, file, {**where, "stage": "after_sentiment"})
            if not (before and after):
                continue
            pairs = {}
            for r in records:
                if matches(r, where) and r.get("stage") in ("after_topic", "after_sentiment"):
                    pairs.setdefault(r["seed"], {})[r["stage"]] = r["value"]
            drops = [p["after_topic"] - p["after_sentiment"] for p in pairs.values() if len(p) == 2]
            mean = _mean(drops)
            std = (sum((d - mean) ** 2 for d in drops) / (len(drops) - 1)) ** 0.5 if len(drops) > 1 else None
            forgetting.append({"strategy": strategy, "size": size_label(k), "after_topic": before,
                               "after_sentiment": after,
                               "sentiment": final(strategy, "sentiment", k),
                               "forgetting": {"mean": mean, "std": std, "seeds": len(drops),
                                              "text": percent_cell(mean, std, len(drops))}})
    seeds_at = {}  # size -> seeds run there
    for r in records:
        if r["strategy"] not in ("zero_shot", "majority_class"):
            seeds_at.setdefault(r["n_per_class"], set()).add(r["seed"])
    seeds = set().union(*seeds_at.values())
    most = max(len(s) for s in seeds_at.values())
    many_seeds_up_to = max(k for k, s in seeds_at.items() if k is not None and len(s) == most)
    fewer = [len(s) for k, s in seeds_at.items() if k is None or k > many_seeds_up_to]
    finetuned = [r["n_per_class"] for r in records if r["strategy"] == "full_finetune" and r["n_per_class"]]
    return {"file": f"results/{file}.json", "sizes": [size_label(k) for k in sizes], "tables": tables,
            "same_items": same_test_items([r for r in records if not r.get("stage") and r["strategy"] != "zero_shot"]),
            "recommendations": recommendations, "costs": costs, "forgetting": forgetting,
            "seeds": len(seeds), "many_seeds_up_to": many_seeds_up_to, "seeds_above": min(fewer, default=most),
            "finetune_max": max(finetuned, default=None), "speedups": speedups,
            "notes": [{"strategy": s, "note": STRATEGY_NOTES.get(s, "")} for s in strategies]}


def task4(records: list[dict]) -> dict:
    file = "04_training_loop"
    trained = [r for r in records if r["task"] in ("topic", "sentiment")]
    rows = []
    for strategy in _ordered(r["strategy"] for r in trained):
        runs = [r for r in trained if r["strategy"] == strategy]
        rows.append({"strategy": strategy,
                     "topic": cell(records, file, {"strategy": strategy, "task": "topic"}),
                     "sentiment": cell(records, file, {"strategy": strategy, "task": "sentiment"}),
                     "train_seconds": f"{_mean(r['train_seconds'] for r in runs):.0f}",
                     "trainable_params": count(max(int(r.get("trainable_params") or 0) for r in runs))})
    n_test = {t: count(next(r["n_test"] for r in trained if r["task"] == t)) for t in ("topic", "sentiment")
              if any(r["task"] == t for r in trained)}
    sizes = {t: count(next(r["n_per_class"] for r in trained if r["task"] == t)) for t in ("topic", "sentiment")
             if any(r["task"] == t for r in trained)}
    return {"file": f"results/{file}.json", "rows": rows, "n_test": n_test, "n_per_class": sizes}


def trained_model(records: list[dict], floors: dict[str, float] | None = None) -> dict:
    from ..experiments.analysis import interval

    file = "train_multitask"
    rows = []
    for r in records:
        _, low, high = interval([r["value"]], r.get("n_test"))
        rows.append({"task": r["task"], "metric": r["metric"].replace("_", " "), "n_test": count(r.get("n_test", "?")),
                     "cell": cell(records, file, {"task": r["task"], "metric": r["metric"]}),
                     "interval": f"{100 * low:.1f}–{100 * high:.1f}",
                     "majority": percent_cell(floors[r["task"]]) if floors and r["task"] in floors else "–",
                     "minutes": f"{r['train_seconds'] / 60:.0f}" if r.get("train_seconds") else "?",
                     "train_examples": count(sum((r.get("train_examples") or {}).values()))
                     if r.get("train_examples") else "?"})
    compare = {"topic": ["ag_news_full_distilbert", "ag_news_full_roberta_large", "ag_news_full_xlnet_large"],
               "sentiment": ["tweeteval_svm", "tweeteval_fasttext", "tweeteval_roberta_base", "tweeteval_bertweet",
                             "tweeteval_timelms"]}
    comparisons = [{"task": row["task"], "ours": row["cell"], "published": [published(k) for k in compare[row["task"]]]}
                   for row in rows if row["task"] in compare]
    return {"file": f"results/{file}.json", "rows": rows, "comparisons": comparisons}


def retrieval(records: list[dict]) -> dict:
    file = "05_retrieval_finetuning"
    metrics = _ordered(r["metric"] for r in records)
    rows = [{"model": s, "cells": [cell(records, file, {"strategy": s, "metric": m}) for m in metrics]}
            for s in _ordered(r["strategy"] for r in records)]
    summary = retrieval_summary(records)
    config = records[0].get("config")
    docs = config.get("n_documents") if isinstance(config, dict) else None
    return {"file": f"results/{file}.json", "metrics": metrics, "rows": rows,
            "n_queries": count(records[0].get("n_test", "?")), "n_documents": count(docs) if docs else "?",
            "chosen": summary["chosen"] if summary else "?",
            "recipes": [{"name": s, "minutes": f"{r['seconds'] / 60:.0f}", "val": f"{100 * r['val']:.1f}"}
                        for s, r in (summary["recipes"].items() if summary else [])],
            "published_bm25": published("scifact_bm25s_ndcg10")}


def subsets(results: dict[str, list[dict] | None]) -> list[dict]:
    """Records scored on fewer test items than the full official test set (limitations)."""
    seen = {}
    for stem, records in results.items():
        for r in records or []:
            full = FULL_TEST.get(r.get("dataset"))
            n = r.get("n_test")
            if full and isinstance(n, int) and n < full:
                key = (stem, r["dataset"], n)
                seen.setdefault(key, set()).add(r["strategy"])
    return [{"file": f"results/{stem}.json", "dataset": dataset, "n_test": count(n), "full": count(FULL_TEST[dataset]),
             "strategies": ", ".join(sorted(strategies))} for (stem, dataset, n), strategies in seen.items()]
