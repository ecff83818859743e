"""Result records (the format of docs/design.md) and the measurements that go in them.

Every figure, README table and report number is read back from these records, so each one
carries its full context: task, dataset, split, strategy, seed, data size, metric, cost.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from .io import write_json

REQUIRED_KEYS = ("experiment", "task", "dataset", "split", "strategy", "seed", "n_per_class",
                 "metric", "value", "train_seconds", "trainable_params", "peak_memory_mb",
                 "profile", "config")


def make_record(**fields) -> dict:
    missing = [k for k in REQUIRED_KEYS if k not in fields]
    if missing:
        raise ValueError(f"result record lacks {missing}")
    return fields


def write_records(path: str | Path, records: list[dict]) -> None:
    for record in records:
        make_record(**record)
    write_json(path, records)


def encode_labels(labels) -> str:
    """A run's predicted label per test item, compactly for its record: class indices as bytes,
    zlib-compressed, base64 (about 0.3 bytes per item for 3 classes)."""
    values = np.asarray(labels, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError("class indices must lie in [0, 255] to be stored as bytes")
    return base64.b64encode(zlib.compress(values.astype(np.uint8).tobytes(), 9)).decode("ascii")


def decode_labels(text: str) -> np.ndarray:
    """The inverse of ``encode_labels``."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8).astype(np.int64)


def load_records(path: str | Path) -> list[dict]:
    return json.loads(Path(path).read_text())


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_memory_mb: float = 0.0  # peak resident-set growth over the start of the block


@contextmanager
def measure(interval: float = 0.01):
    """Wall-clock seconds and peak RSS growth of a block, sampled by a background thread."""
    process = psutil.Process(os.getpid())
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.wait(interval):
            peak[0] = max(peak[0], process.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    result = Measurement()
    start = time.perf_counter()
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        result.seconds = time.perf_counter() - start
        result.peak_memory_mb = (peak[0] - baseline) / 2**20


class Recorder:
    """Collects one experiment's records, filling in the keys every record shares."""

    def __init__(self, experiment: str, profile, config: dict, is_sample: bool = False):
        self.experiment = experiment
        self.profile = profile
        self.common = {"experiment": experiment, "profile": profile.name, "config": config,
                       "is_sample": is_sample}
        self.records: list[dict] = []

    def add(self, **fields) -> dict:
        defaults = {"seed": 0, "n_per_class": None, "split": "test", "train_seconds": 0.0,
                    "trainable_params": 0, "peak_memory_mb": 0.0}
        record = make_record(**{**defaults, **self.common, **fields})
        self.records.append(record)
        return record

    def save(self) -> Path:
        from .config import results_dir

        path = results_dir(self.profile) / f"{self.experiment}.json"
        write_records(path, self.records)
        return path
