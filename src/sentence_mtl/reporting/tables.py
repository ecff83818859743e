"""The results tables of ``docs/results.md`` and ``docs/service.md``, as Markdown tables only.

Every cell is read from ``results/``; the headings and sentences around the tables are written in
``templates/docs/*.md.j2``. ``tables(results)`` gives each table by name (absent when its file is).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..experiments import analysis
from ..experiments.analysis import forgetting, interval, interval_text, percent_cell, summarize


def load(results: Path, stem: str):
    path = results / f"{stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def markdown(header: list[str], rows: list[list]) -> str:
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
        ]
    )


def _wide(records, index, columns):
    table = summarize(records, by=(*index, columns))
    table["cell"] = [percent_cell(m, s, n) for m, s, n in zip(table["mean"], table["std"], table["seeds"])]
    return table.pivot(index=list(index), columns=columns, values="cell")


def embeddings(records: list[dict]) -> dict:
    out = {
        "sts": markdown(
            ["encoder", "Spearman"],
            [[r["strategy"], percent_cell(r["value"])] for r in records if r["task"] == "sts"],
        )
    }
    probes = [r for r in records if r["strategy"] in ("frozen_minilm_logreg", "tfidf_logreg")]
    wide = _wide(probes, ("task", "strategy"), "n_per_class")
    sizes = list(wide.columns)
    out["probes"] = markdown(
        ["task", "features", *map(str, sizes)],
        [[t, s, *(row[k] for k in sizes)] for (t, s), row in wide.iterrows()],
    )
    out["throughput"] = markdown(
        ["encoder", "sentences/s", "× sentence-transformers"],
        [
            [r["strategy"], f"{r['value']:.0f}", f"{r['ratio_vs_sentence_transformers']:.2f}x"]
            for r in records
            if r["task"] == "throughput"
        ],
    )
    return out


def freezing(records: list[dict]) -> dict:
    compared = [r for r in records if r["task"] in ("topic", "sentiment") and not r.get("stage")]
    out = {}
    for task in ("topic", "sentiment"):
        rows = [r for r in compared if r["task"] == task]
        wide = _wide(rows, ("strategy",), "n_per_class")
        sizes = sorted(wide.columns, key=lambda k: (k == "all", k if k != "all" else 0))
        body = []
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            runs = [r for r in rows if r["strategy"] == strategy]
            at32 = sorted(r["train_seconds"] for r in runs if r["n_per_class"] == 32)
            cells = [
                wide.loc[strategy].get(k) if isinstance(wide.loc[strategy].get(k), str) else "–"
                for k in sizes
            ]
            body.append(
                [
                    strategy,
                    *cells,
                    f"{max(r['trainable_params'] for r in runs):,}",
                    f"{at32[len(at32) // 2]:.1f}" if at32 else "–",
                ]
            )
        out[f"freeze_{task}"] = markdown(["strategy", *map(str, sizes), "trainable params", "train s"], body)
    speed = [r for r in records if r["task"] == "cache_benchmark"]
    out["cache"] = markdown(
        ["measured", "× faster", "target"],
        [
            [r["strategy"], f"{r['value']:.{1 if r['value'] >= 10 else 2}f}x", f"{r['target']:g}x"]
            for r in speed
        ],
    )
    if any(r.get("stage") for r in records):
        forgot = forgetting(records).groupby("strategy")["forgetting"].agg(["mean", "std"])
        out["forgetting"] = markdown(
            ["stage 2", "topic points forgotten (mean ± std)"],
            [
                [s.replace("sequential_", ""), f"{100 * m:.1f} ± {100 * sd:.1f}"]
                for s, (m, sd) in forgot.iterrows()
            ],
        )
    return out


def training_loop(records: list[dict]) -> dict:
    trained = [r for r in records if r["task"] in ("topic", "sentiment")]
    wide = _wide(trained, ("strategy",), "task")
    rows = []
    for s in dict.fromkeys(r["strategy"] for r in trained):
        runs = [r for r in trained if r["strategy"] == s]
        seconds = sum(r["train_seconds"] for r in runs) / len(runs)  # one record per task, same seconds
        rows.append([s, *(wide.loc[s].get(t, "–") for t in ("topic", "sentiment")), f"{seconds:.0f}"])
    return {
        "loop": markdown(
            ["configuration", "topic (accuracy)", "sentiment (macro recall)", "train s / run"], rows
        )
    }


def trained(records: list[dict], floors: dict) -> dict:
    rows = [
        [
            r["task"],
            r["metric"].replace("_", " "),
            f"{r['n_test']:,}",
            interval_text(*interval([r["value"]], r["n_test"])),
            f"{100 * floors[r['task']]:.1f}%" if r["task"] in floors else "–",
            f"{r['train_seconds'] / 60:.0f} min",
        ]
        for r in records
    ]
    return {
        "trained": markdown(
            ["task", "metric", "test items", "ours", "majority class", "training (2 cores)"], rows
        )
    }


def shorten(text: str, width: int = 90) -> str:
    """One line of at most ``width`` characters, safe in a Markdown table cell."""
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def predictions(reports: list[dict]) -> dict:
    examples = [
        [
            rep["task"],
            shorten(e["text"]),
            e["gold"],
            f"{e['predicted']} ({100 * e['probability']:.0f}%)",
            "right" if e["correct"] else "wrong",
        ]
        for rep in reports
        for e in rep["examples"]
    ]
    confusions = [
        [
            rep["task"],
            f"*{c['gold']}* as *{c['predicted']}*",
            f"{c['count']:,}",
            f"{100 * c['share_of_gold']:.1f}%",
            "; ".join(f"\"{shorten(e['text'], 70)}\" ({100 * e['probability']:.0f}%)" for e in c["examples"]),
        ]
        for rep in reports
        for c in rep["confusions"]
    ]
    return {
        "examples": markdown(["task", "text", "gold", "predicted (probability)", ""], examples),
        "confusions": markdown(
            ["task", "gold read as", "items", "share of gold", "its surest mistakes"], confusions
        ),
    }


def robustness(result: dict) -> dict:
    from .robustness import SET_NAMES, difference, models_in_order

    sets, models = result["sets"], models_in_order(result)
    cell = lambda m: f"{100 * m['value']:.1f} ({100 * m['low']:.1f}–{100 * m['high']:.1f})"  # noqa: E731
    rows = [
        [
            name,
            *(cell(sets[s]["models"][name]) for s in SET_NAMES),
            f"{100 * sets['uci_sentences']['models'][name]['neutral_share']:.1f}%",
            f"{100 * result['news_called_neutral'][name]:.1f}%",
        ]
        for name in models
    ]
    table = markdown(["model", *SET_NAMES.values(), "reviews called neutral", "news called neutral"], rows)
    tuned = models[-1]
    diffs = []
    for s, label in SET_NAMES.items():
        ds = [difference(result, s, tuned, other) for other in models[:-1]]
        diffs.append(
            [
                label,
                *(
                    f"{100 * d['mean']:+.1f} ({100 * d['low']:+.1f} to {100 * d['high']:+.1f}), "
                    f"{analysis.verdict(d['low'], d['high'])}"
                    for d in ds
                ),
            ]
        )
    return {
        "robustness": table,
        "robustness_paired": markdown(["set", *(f"{tuned} minus {o}" for o in models[:-1])], diffs),
    }


def int8(record: dict) -> dict:
    rows = [
        [
            key,
            f"{r['sentences_per_second']:.0f}",
            f"{r['ratio_vs_ours_fp32']:.2f}x",
            f"{100 * r['spearman']:.2f}",
            f"{-100 * r['spearman_drop'] + 0.0:+.2f}",
            "–" if key == "ours_fp32" else "met" if r["meets_target"] else "missed",
        ]
        for key, r in record["contenders"].items()
    ]
    out = {"int8": markdown(["encoder", "sentences/s", "× ours fp32", "Spearman", "change", "target"], rows)}
    if q := record.get("classifier"):
        out["int8_classifier"] = markdown(
            ["task", "metric", "items", "fp32", "int8", "change"],
            [
                [
                    t,
                    q["metric"][t].replace("_", " "),
                    f"{q['n'][t]:,}",
                    f"{100 * q['fp32'][t]:.1f}",
                    f"{100 * q['int8'][t]:.1f}",
                    f"{100 * (q['int8'][t] - q['fp32'][t]):+.1f}",
                ]
                for t in q["fp32"]
            ],
        )
    return out


def speedups(records: list[dict]) -> dict:
    return {
        "speedups": markdown(
            ["lever", "steps/s", "× study's loop", "padding share of batch tokens"],
            [
                [
                    r["strategy"],
                    f"{r['value']:.2f}",
                    f"{r['speedup']:.2f}x",
                    f"{100 * r['padding_share']:.0f}%",
                ]
                for r in records
            ],
        )
    }


def train_throughput(record: dict) -> dict:
    speed, ratios = record["sentences_per_second"], record["ratio_ours_over"]
    return {
        "train_throughput": markdown(
            ["loop", "sentences/s", "ours ×"],
            [[k, f"{v:.1f}", "–" if k == "ours" else f"{ratios[k]:.2f}x"] for k, v in speed.items()],
        )
    }


def retrieval(records: list[dict]) -> dict:
    wide = _wide(records, ("strategy",), "metric")
    metrics = ["ndcg@10", "mrr@10", "recall@100"]
    return {
        "retrieval": markdown(
            ["model", *metrics],
            [[s, *(wide.loc[s, m] for m in metrics)] for s in dict.fromkeys(r["strategy"] for r in records)],
        )
    }


def runtime(runs: list[dict]) -> dict:
    """The latest whole run of each kind (``tools/reproduce.py``): cold and recomputing, or warm and reusing."""
    kinds = {
        ("cold", "recompute"): "`make reproduce`, empty cache (min)",
        ("warm", "reuse"): "`make notebooks`, stored runs (min)",
    }
    latest = {
        (r["cache"], r["store"]): r
        for r in runs
        if (r["cache"], r["store"]) in kinds and not r.get("resumed")
    }
    if not latest:
        return {}
    shown = [k for k in kinds if k in latest]
    rows = [
        [
            f"`{stem}`",
            *(
                "–" if (c := latest[k]["notebook_seconds"].get(stem)) is None else f"{c / 60:.1f}"
                for k in shown
            ),
        ]
        for stem in next(iter(latest.values()))["notebook_seconds"]
    ]
    rows.append(["**all notebooks**", *(f"**{latest[k]['total_seconds'] / 60:.1f}**" for k in shown)])
    rows.append(["machine, date", *(f"{latest[k]['cores']} cores, {latest[k]['date'][:10]}" for k in shown)])
    return {"runtime": markdown(["notebook", *(kinds[k] for k in shown)], rows)}


def _sigterm_rows(s: dict) -> list[list]:
    """The soak's SIGTERM measurement, when the run made one."""
    if "sigterm_exit_s" not in s:
        return []
    seconds, shown = s["sigterm_exit_s"], "did not exit" if s["sigterm_exit_s"] is None else f"{s['sigterm_exit_s']:.1f} s"
    return [[f"exit after SIGTERM with {s['sigterm_slow_readers']} slow readers connected "
             f"(`shutdown_timeout` {s['shutdown_timeout_s']} s)", shown,
             f"≤ {s['sigterm_target_s']:g} s (`shutdown_timeout` + 10 s)"]]


def soak(s: dict) -> dict:
    return {
        "soak": markdown(
            ["measured", "value", "target"],
            [
                [
                    "models served; header, body and send timeouts",
                    f"{s['models']}; {s['server_limits']['header_timeout']} s",
                    "–",
                ],
                [
                    f"failed ordinary requests ({s['clients']} clients × {s['requests_per_client']})",
                    f"{s['failed_ordinary_requests']} of {s['ordinary_requests']}",
                    "0",
                ],
                ["server tracebacks", s["server_tracebacks"], "0"],
                [
                    f"`/health` p95 ({s['health_polls']} polls)",
                    f"{1000 * s['health_p95_s']:.0f} ms",
                    f"< {s['health_p95_target_s']:g} s",
                ],
                [
                    "server memory, end over start",
                    f"{s['rss_end_over_start']:.2f}x ({s['rss_start_mb']:.0f} → "
                    f"{s['rss_end_mb']:.0f} MB)",
                    f"≤ {s['rss_target_ratio']:g}x",
                ],
                *_sigterm_rows(s),
            ],
        ),
        "abuse": markdown(
            ["abusive request (one at a time)", "answer", "seconds"],
            [
                [a["kind"].replace("_", " "), a["outcome"], f"{a['seconds']:.2f}"]
                for a in s["abusive_requests"]
            ],
        ),
    }


def container(runs: dict) -> dict:
    rows = [
        [
            kind,
            f"{r['image_size_mb']:,} MB",
            f"{r['build_s']} s",
            f"{r['container_test_s']} s",
            f"`{r['base']}`, {r['engine']}, {r['cpus']} CPU cores, {r['date']}",
        ]
        for kind in ("cold", "cached")
        if (r := runs.get(kind))
    ]
    return {
        "container": markdown(
            ["build", "image size", "build time", "whole `make container-test`", "base, engine, date"], rows
        )
    }


def tables(results: Path) -> dict:
    out: dict = {}
    floors = analysis.majority_floors(load(results, "03_freezing_strategies") or [])
    for stem, build in (
        ("01_sentence_embeddings", embeddings),
        ("03_freezing_strategies", freezing),
        ("04_training_loop", training_loop),
        ("train_predictions", predictions),
        ("robustness", robustness),
        ("int8_onnx", int8),
        ("study_speedups", speedups),
        ("train_throughput", train_throughput),
        ("05_retrieval_finetuning", retrieval),
        ("reproduce_timing", runtime),
        ("serve_soak", soak),
        ("container", container),
    ):
        if (data := load(results, stem)) is not None:
            out.update(build(analysis.without_headline(data) if stem in analysis.HEADLINE_STEMS else data))
    if (records := load(results, "train_multitask")) is not None:
        out.update(trained(records, floors))
    return out
