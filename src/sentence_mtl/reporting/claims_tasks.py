"""The claims of embeddings, heads, retrieval and operations (see ``claims``; the two studies:
``claims_studies``)."""

from __future__ import annotations

from pathlib import Path

from ..experiments import analysis
from ..experiments.analysis import interval, paired, retrieval_summary
from .claim import claim, difference, load, mean_claim, published, spearman_interval
from .robustness import difference as difference_in

CLASSIFICATION = ("topic", "sentiment")


def embeddings(results: Path) -> dict:
    records = load(results, "01_sentence_embeddings") or []
    src = "results/01_sentence_embeddings.json"
    by = {(r["task"], r["strategy"]): r for r in records if r["task"] in ("sts", "parity", "throughput")}
    out: dict = {}
    if parity := by.get(("parity", "ours_vs_sentence_transformers")):
        out["emb_parity_max_diff"] = claim(
            parity["value"], unit="number", source=f"{src}: task=parity", items=parity["n_test"]
        )
    for pooling in ("mean", "max", "cls"):
        if r := by.get(("sts", f"{pooling}_pooling")):
            out[f"emb_sts_{pooling}"] = claim(
                *spearman_interval(r["value"], r["n_test"]),
                unit="score",
                source=f"{src}: task=sts, strategy={pooling}_pooling",
                items=r["n_test"],
            )
    if r := by.get(("sts", "random_init_mean")):
        out["emb_sts_random_init"] = claim(
            r["value"], unit="score", source=f"{src}: strategy=random_init_mean"
        )
    out["emb_sts_published"] = published("stsb_minilm_spearman")
    for task in CLASSIFICATION:
        for k, tag in ((8, "8"), (None, "all")):
            out[f"emb_probe_{task}_{tag}"] = mean_claim(records, "frozen_minilm_logreg", task, k, source=src)
            out[f"emb_probe_{task}_{tag}_vs_tfidf"] = difference(
                paired(records, "frozen_minilm_logreg", "tfidf_logreg", task, k),
                f"{src}: frozen_minilm_logreg minus tfidf_logreg, {task}, n_per_class={k}, paired by seed",
            )
    onnx = load(results, "int8_onnx")
    if onnx:
        best = onnx["contenders"]["onnx_int8_per_channel"]
        osrc = "results/int8_onnx.json: contenders.onnx_int8_per_channel"
        out["emb_int8_ratio"] = claim(best["ratio_vs_ours_fp32"], unit="ratio", source=osrc)
        out["emb_int8_spearman"] = claim(best["spearman"], unit="score", source=osrc)
        out["emb_int8_target"] = claim(
            onnx["target_ratio"], unit="ratio", source="results/int8_onnx.json: target_ratio"
        )
    return out


def heads(results: Path) -> dict:
    out: dict = {}
    floors = analysis.majority_floors(load(results, "03_freezing_strategies") or [])
    for r in load(results, "train_multitask") or []:
        src = f"results/train_multitask.json: task={r['task']}"
        out[f"heads_{r['task']}"] = claim(
            *interval([r["value"]], r["n_test"]), unit="percent", source=src, items=r["n_test"], seeds=1
        )
        out["heads_train_minutes"] = claim(r["train_seconds"] / 60, unit="minutes", source=src)
        if r["task"] in floors:
            out[f"heads_{r['task']}_majority"] = claim(
                floors[r["task"]],
                unit="percent",
                source="results/03_freezing_strategies.json: majority_class",
            )
    out["heads_topic_published"] = published("ag_news_full_distilbert", "percent")
    out["heads_sentiment_published"] = published("tweeteval_roberta_base", "percent")
    for report in load(results, "train_predictions") or []:
        c = report["confusions"][0]
        out[f"heads_{report['task']}_confusion"] = claim(
            c["share_of_gold"],
            unit="percent",
            gold=c["gold"],
            predicted=c["predicted"],
            source=f"results/train_predictions.json: task={report['task']}, confusions[0]",
        )
    robust = load(results, "robustness")
    if robust:
        names = list(robust["compared"])
        frozen, tuned = names[0], names[-1]
        for s, tag in (("uci_sentences", "reviews"), ("airline_sentiment", "airline")):
            m = robust["sets"][s]["models"][tuned]
            src = f"results/robustness.json: sets.{s}"
            out[f"heads_ood_{tag}"] = claim(
                m["value"], m["low"], m["high"], unit="percent", source=src, items=robust["sets"][s]["n"]
            )
            out[f"heads_ood_{tag}_vs_frozen"] = difference(
                difference_in(robust, s, tuned, frozen), src + " (paired bootstrap)"
            )
        out["heads_wise_alpha"] = claim(
            robust["chosen_alpha"], unit="number", source="results/robustness.json"
        )
    joint = {(r["task"], r["strategy"]): r for r in load(results, "02_multitask_heads") or []}
    if (airline := joint.get(("airline", "joint_heads_frozen_encoder"))) and (
        floor := joint.get(("airline", "majority_class"))
    ):
        src = "results/02_multitask_heads.json: task=airline"
        out["heads_airline_head"] = claim(
            *interval([airline["value"]], airline["n_test"]),
            unit="percent",
            source=src,
            items=airline["n_test"],
        )
        out["heads_airline_majority"] = claim(floor["value"], unit="percent", source=src)
        out["heads_airline_majority_label"] = claim(floor.get("majority_label", "?"), unit="name", source=src)
    if (joint_sentiment := joint.get(("sentiment", "joint_heads_frozen_encoder"))) and (
        floor := joint.get(("sentiment", "majority_class"))
    ):
        src = "results/02_multitask_heads.json: task=sentiment"
        out["heads_joint_sentiment"] = claim(
            *interval([joint_sentiment["value"]], joint_sentiment["n_test"]),
            unit="percent",
            source=src,
            items=joint_sentiment["n_test"],
        )
        out["heads_joint_sentiment_majority"] = claim(floor["value"], unit="percent", source=src)
    return out


def retrieval(results: Path) -> dict:
    summary = retrieval_summary(load(results, "05_retrieval_finetuning") or [])
    src = "results/05_retrieval_finetuning.json"
    if summary is None:
        return {}
    pick = summary["recipes"][summary["chosen"]]
    bm25 = summary["bm25"]
    out = {
        "ret_queries": claim(summary["n_queries"], unit="count", source=src),
        "ret_bm25": claim(bm25, unit="score", source=f"{src}: strategy=bm25"),
        "ret_pretrained": claim(summary["pretrained"], unit="score", source=f"{src}: strategy=pretrained"),
        "ret_chosen": claim(summary["chosen"], unit="name", source=f"{src}: recipe with the best val_ndcg10"),
        "ret_recipes": claim(len(summary["recipes"]), unit="count", source=src),
        "ret_bm25_published": published("scifact_bm25s_ndcg10"),
        "ret_bge_published": published("scifact_bge_small_ndcg10"),
        "ret_bge_base_rrf_published": published("scifact_bm25_bge_base_rrf_ndcg10"),
    }
    out["ret_dense"] = claim(
        *pick["test"],
        unit="score",
        seeds=pick["seeds"],
        items=summary["n_queries"],
        source=f"{src}: strategy={summary['chosen']}",
        reference=bm25,
    )
    if pick["hybrid_test"]:
        # the hybrid against each published peer: the same score, its verdict per reference
        for name, peer in (("ret_hybrid", "ret_bge_published"),
                           ("ret_hybrid_vs_bge_base", "ret_bge_base_rrf_published")):
            out[name] = claim(*pick["hybrid_test"], unit="score", seeds=pick["seeds"],
                              items=summary["n_queries"], source=f"{src}: strategy={pick['hybrid']}",
                              reference=out[peer]["value"])
        mean, low, high = pick["hybrid_test"]
        out["ret_hybrid_vs_bm25"] = claim(
            mean - bm25,
            low - bm25,
            high - bm25,
            unit="points",
            source=f"{src}: hybrid minus bm25 (queries fixed)",
        )
    if summary["hybrid_bm25_pretrained"] is not None:
        out["ret_hybrid_pretrained"] = claim(
            summary["hybrid_bm25_pretrained"], unit="score", source=f"{src}: strategy=hybrid_bm25_pretrained"
        )
    for s, r in summary["recipes"].items():
        if "minus_first" in r:
            out["ret_recipe_gain"] = claim(
                *r["minus_first"],
                unit="points",
                seeds=r["seeds"],
                source=f"{src}: {s} minus {summary['first']}, paired by seed",
            )
            out["ret_recipe_time_ratio"] = claim(
                r["seconds"] / summary["recipes"][summary["first"]]["seconds"],
                unit="ratio",
                source=f"{src}: train_seconds",
            )
    return out


# This repository's own budgets on 2 CPU cores (minutes): a cold reproduction, a warm
# re-execution of every notebook from the run store, and `make train` end to end.
COLD_CAP_MIN, WARM_CAP_MIN, MAKE_TRAIN_LIMIT_MIN, MAKE_RETRIEVAL_LIMIT_MIN = 90, 5, 30, 35


def operations(results: Path) -> dict:
    """Run times: what a cold reproduction costs at least, from the committed records."""
    import json

    total = sum(
        analysis.training_seconds(json.loads(p.read_text())) for p in sorted(results.glob("0[1-5]_*.json"))
    )
    out = {
        "ops_cold_minutes_lower_bound": claim(
            total / 60, unit="minutes", source="results/0[1-5]_*.json: analysis.training_seconds"
        )
    }
    from .robustness import TEST_TARGETS

    out["ops_cold_cap"] = claim(COLD_CAP_MIN, unit="minutes", source="claims_tasks.BUDGETS")
    out["ops_warm_cap"] = claim(WARM_CAP_MIN, unit="minutes", source="claims_tasks.BUDGETS")
    out["ops_make_train_limit"] = claim(MAKE_TRAIN_LIMIT_MIN, unit="minutes", source="claims_tasks.BUDGETS")
    out["ops_make_retrieval_limit"] = claim(MAKE_RETRIEVAL_LIMIT_MIN, unit="minutes",
                                            source="claims_tasks.BUDGETS")
    from .source_words import CAP, literal_words

    src = "source_words.literal_words over src/sentence_mtl"
    out["ops_src_words"] = claim(literal_words(Path(__file__).resolve().parents[1]), unit="count", source=src)
    out["ops_src_words_cap"] = claim(CAP, unit="count", source="source_words.CAP")
    for task, target in TEST_TARGETS.items():
        out[f"heads_{task}_target"] = claim(
            target, unit="percent", source="reporting.robustness.TEST_TARGETS"
        )
    runs = [
        r for r in (load(results, "reproduce_timing") or []) if (r["cache"], r["store"]) == ("warm", "reuse")
    ]
    if runs:
        out["ops_warm_minutes"] = claim(
            runs[-1]["total_seconds"] / 60,
            unit="minutes",
            source="results/reproduce_timing.json: latest warm reuse run",
        )
    soak = load(results, "serve_soak")
    if soak:
        out["ops_soak_p95"] = claim(soak["health_p95_s"], unit="seconds", source="results/serve_soak.json")
        out["ops_soak_p95_target"] = claim(
            soak["health_p95_target_s"], unit="seconds", source="results/serve_soak.json"
        )
        out["ops_soak_rss"] = claim(
            soak["rss_end_over_start"], unit="ratio", source="results/serve_soak.json"
        )
        out["ops_soak_rss_target"] = claim(
            soak["rss_target_ratio"], unit="ratio", source="results/serve_soak.json"
        )
    checked = load(results, "verify")
    if checked:
        source = "results/verify.json (make verify)"
        out["ops_verify_date"] = claim(checked["date"][:10], unit="name", source=source)
        out["ops_verify_runs"] = claim(checked["runs_checked"], unit="count", source=source)
        out["ops_verify_identical"] = claim(checked["identical"], unit="count", source=source)
        out["ops_verify_kinds"] = claim(len(checked["kinds"]), unit="count", source=source)
        out["ops_verify_files"] = claim(checked["record_files"], unit="count", source=source)
        out["ops_verify_damaged"] = claim(len(checked["damaged"]), unit="count", source=source)
        out["ops_verify_minutes"] = claim(checked["minutes"], unit="minutes", source=source)
        out["ops_verify_values_identical"] = claim(checked["values_identical"], unit="count", source=source)
        largest = max((c for c in checked["checks"] if c["largest_value_difference"] is not None),
                      key=lambda c: c["largest_value_difference"], default={})
        out["ops_verify_largest_value_difference"] = claim(
            largest.get("largest_value_difference"), unit="number", source=f"{source}: |recomputed - stored| metric"
        )
        out["ops_verify_largest_value_kind"] = claim(largest.get("kind"), unit="name", source=source)
        out["ops_verify_not_reached"] = claim(len(checked["not_reached"]), unit="count", source=source)
    timing = load(results, "train_timing")
    if timing:
        out["ops_make_train_minutes"] = claim(
            timing["make_train_seconds"] / 60, unit="minutes", source="results/train_timing.json"
        )
    retrieval = load(results, "retrieval_timing")
    if retrieval and not retrieval.get("is_sample"):
        source = "results/retrieval_timing.json"
        out["ops_make_retrieval_minutes"] = claim(retrieval["make_retrieval_seconds"] / 60, unit="minutes",
                                                  source=source)
        out["ops_make_retrieval_recipe"] = claim(retrieval["recipe"], unit="name", source=source)
        out["ops_make_retrieval_test_ndcg"] = claim(retrieval["metrics"]["test_ndcg@10"], unit="score",
                                                    source=source)
    return out


def details(results: Path) -> dict:
    """The numbers the prose of ``docs/results.md`` states beside its tables."""
    out: dict = {}
    records = load(results, "01_sentence_embeddings") or []
    by = {(r["task"], r["strategy"]): r for r in records}
    if {("throughput", "ours_int8"), ("throughput", "ours_fp32"), ("sts", "int8_mean")} <= set(by):
        src = "results/01_sentence_embeddings.json: throughput and sts"
        out["emb_int8_torch_ratio"] = claim(
            by["throughput", "ours_int8"]["value"] / by["throughput", "ours_fp32"]["value"],
            unit="ratio",
            source=src,
        )
        out["emb_int8_torch_change"] = claim(
            by["sts", "int8_mean"]["value"] - by["sts", "mean_pooling"]["value"], unit="points", source=src
        )
    if onnx := load(results, "int8_onnx"):
        out["emb_int8_max_drop"] = claim(
            onnx["max_spearman_drop"], unit="points", source="results/int8_onnx.json"
        )
        if q := onnx.get("classifier"):
            out["emb_int8_classifier_allowance"] = claim(
                q["allowance"], unit="points", source="results/int8_onnx.json"
            )
            out["emb_int8_classifier_keeps"] = claim(
                bool(q["keeps_quality"]),
                unit="name",
                source="results/int8_onnx.json: classifier.keeps_quality",
            )
    for r in load(results, "03_freezing_strategies") or []:
        if r["task"] == "cache_benchmark":
            tag = "heads" if r["strategy"] == "heads_epoch_ratio" else "top2"
            out[f"cache_{tag}_ratio"] = claim(
                r["value"], unit="ratio", source=f"results/03_*.json: {r['strategy']}"
            )
            out[f"cache_{tag}_target"] = claim(
                float(r["target"]), unit="ratio", source="results/03_*.json: target"
            )
    if robust := load(results, "robustness"):
        src = "results/robustness.json"
        out["robust_reps"] = claim(robust["bootstrap_reps"], unit="count", source=src)
        if robust.get("baseline"):
            tuned, base = list(robust["compared"])[-1], robust["baseline"]["name"]
            out["robust_val_saved"] = claim(robust["validation"][tuned]["mean"], unit="score", source=src)
            out["robust_val_baseline"] = claim(robust["validation"][base]["mean"], unit="score", source=src)
    if rerun := load(results, "store_rerun"):
        out["ops_store_rerun_share"] = claim(
            rerun["ratio"], unit="percent", source="results/store_rerun.json"
        )
        out["ops_store_rerun_target"] = claim(
            rerun["target"], unit="percent", source="results/store_rerun.json"
        )
    if retrieval_records := load(results, "05_retrieval_finetuning"):
        out["ret_documents"] = claim(
            retrieval_records[0]["config"]["n_documents"],
            unit="count",
            source="results/05_retrieval_finetuning.json: config.n_documents",
        )
    return out
