"""Encoding throughput measured against a peer in the same process, runs alternated.

Alternating (A, B, C, A, B, C, ...) spreads any drift of a shared machine over every
contender; the median of the repeats is reported, and ratios are against the first entry.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def compare_throughput(encoders: dict[str, Callable[[list[str]], object]], texts: list[str],
                       repeats: int = 3, warmup: int = 32) -> dict[str, dict]:
    """{name: {"sentences_per_second", "ratio_vs_<first>", "runs"}} for each encode callable."""
    for encode in encoders.values():
        encode(texts[:warmup])
    runs = {name: [] for name in encoders}
    for _ in range(repeats):
        for name, encode in encoders.items():
            start = time.perf_counter()
            encode(texts)
            runs[name].append(len(texts) / (time.perf_counter() - start))
    reference = next(iter(encoders))
    ref_speed = float(np.median(runs[reference]))
    return {name: {"sentences_per_second": float(np.median(r)),
                   f"ratio_vs_{reference}": float(np.median(r)) / ref_speed,
                   "runs": [float(x) for x in r]}
            for name, r in runs.items()}


def sentence_transformers_peer(model_path: str, batch_size: int):
    """The same model through ``SentenceTransformer.encode`` (mean pooling + normalisation)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    return lambda texts: model.encode(texts, batch_size=batch_size, show_progress_bar=False)
