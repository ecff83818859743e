"""What the run store buys: notebook 03 in the smoke profile executed twice with one cache folder
(embeddings and the run store) that is empty at the start. The second execution finds every run in the store and only loads;
its metric values must equal the first's.

Prints both wall times (kernel start included) and their ratio; ``--record`` writes them to
``results/store_rerun.json`` (docs/results.md reads it).

Usage: python benchmarks/store_rerun.py [--record results/store_rerun.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.io import write_json

NOTEBOOK = REPO_ROOT / "notebooks" / "03_freezing_strategies.ipynb"
RESULTS = REPO_ROOT / "runs" / "smoke" / "results" / "03_freezing_strategies.json"
TARGET = 0.15  # the second execution's share of the first's wall time


def execute(env: dict, out_dir: Path, name: str) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", str(NOTEBOOK),
                    "--output-dir", str(out_dir), "--output", name], env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, json.loads(RESULTS.read_text())


def metric_values(records: list[dict]) -> list[tuple]:
    """Everything a record says about quality: the measured costs (seconds, memory) excluded."""
    return sorted((r["task"], r["strategy"], str(r["n_per_class"]), r["seed"], str(r.get("stage")), r["value"])
                  for r in records if r["task"] != "cache_benchmark")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "SENTENCE_MTL_PROFILE": "smoke", "SENTENCE_MTL_CACHE": cache,
               "SENTENCE_MTL_STORE_DIR": str(Path(cache) / "runs"), "SENTENCE_MTL_STORE": "reuse"}
        first, first_records = execute(env, Path(out), "first.ipynb")
        second, second_records = execute(env, Path(out), "second.ipynb")
    identical = metric_values(first_records) == metric_values(second_records)
    ratio = second / first
    print(f"first execution (empty cache): {first:.1f} s; second: {second:.1f} s; ratio {ratio:.2f} "
          f"(target <= {TARGET}: {'met' if ratio <= TARGET else 'missed'}); metric values identical: {identical}")
    if args.record:
        write_json(args.record, {"notebook": NOTEBOOK.name, "profile": "smoke", "first_seconds": round(first, 1),
                                 "second_seconds": round(second, 1), "ratio": ratio, "target": TARGET,
                                 "identical_values": identical, "records": len(first_records),
                                 "cores": os.cpu_count()})
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
