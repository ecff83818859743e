"""Markdown tables generated from ``results/*.json`` (README; the report reads the same files).

Tables are never typed by hand: ``tools/update_readme.py`` rewrites the README's marked block
from these functions, and ``tests/test_readme.py`` fails when the block is stale.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .config import REPO_ROOT
from .results import summarize

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _pct(mean: float, std: float | None = None, seeds: int = 1) -> str:
    if seeds > 1 and std is not None and not pd.isna(std):
        return f"{100 * mean:.1f} ± {100 * std:.1f}"
    return f"{100 * mean:.2f}"


def _load(results_dir: Path, stem: str) -> list[dict] | None:
    path = results_dir / f"{stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def embeddings_tables(records: list[dict]) -> str:
    by = {(r["task"], r["strategy"]): r for r in records if r["task"] in ("sts", "parity")}
    lines = ["### Task 1: sentence embeddings (`results/01_sentence_embeddings.json`)", "",
             "STS-B test, Spearman of cosine similarity (1,379 pairs; published all-MiniLM-L6-v2: 82.03):", "",
             "| encoder | Spearman |", "|---|---|"]
    for (task, strategy), r in by.items():
        if task == "sts":
            lines.append(f"| {strategy} | {_pct(r['value'])} |")
    parity = by.get(("parity", "ours_vs_sentence_transformers"))
    if parity:
        lines += ["", f"Max absolute difference from `sentence-transformers` on {parity['n_test']} "
                      f"STS-B sentences: {parity['value']:.1e}."]
    probes = [r for r in records if r["strategy"] in ("frozen_minilm_logreg", "tfidf_logreg")]
    if probes:
        table = summarize(probes)
        table["cell"] = [_pct(m, s, n) for m, s, n in zip(table["mean"], table["std"], table["seeds"])]
        wide = table.pivot(index=["task", "strategy"], columns="n_per_class", values="cell")
        sizes = list(wide.columns)
        n_test = {r["task"]: r["n_test"] for r in probes}
        lines += ["", "Linear probes on frozen vectors vs TF-IDF, official test sets (AG News: accuracy "
                      f"on {n_test.get('topic', '?'):,}; TweetEval: macro recall on {n_test.get('sentiment', '?'):,}), "
                      "by training examples per class:", "",
                  "| task | features | " + " | ".join(str(s) for s in sizes) + " |",
                  "|---|---|" + "---|" * len(sizes)]
        for (task, strategy), row in wide.iterrows():
            lines.append(f"| {task} | {strategy} | " + " | ".join(row[s] for s in sizes) + " |")
    speed = {r["strategy"]: r for r in records if r["task"] == "throughput"}
    if speed:
        lines += ["", "Encoding throughput, same texts and batch size, one process (sentences/s; ratio vs sentence-transformers):", "",
                  "| encoder | sentences/s | ratio |", "|---|---|---|"]
        for name, r in speed.items():
            lines.append(f"| {name} | {r['value']:.0f} | {r['ratio_vs_sentence_transformers']:.2f}x |")
    return "\n".join(lines)


def results_block(results_dir: Path = REPO_ROOT / "results") -> str:
    sections = []
    records = _load(results_dir, "01_sentence_embeddings")
    if records:
        sections.append(embeddings_tables(records))
    body = "\n\n".join(sections) if sections else "_No results yet: run `make reproduce`._"
    return f"{START}\n{body}\n{END}"


def replace_block(readme: str, block: str) -> str:
    start, end = readme.index(START), readme.index(END) + len(END)
    return readme[:start] + block + readme[end:]
