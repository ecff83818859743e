"""``make verify``: recompute a random sample of the run store's runs and compare each with its
record, bit for bit, without a cold reproduction: every measured field (``store.measured``) and,
apart, the metric values alone, with the largest difference found.

The sample is stratified: every notebook and, in notebook 03, every strategy kind (the run's
``runner``) gives at least one run (runs of the headline grid, which ``tools/headline_study.py``
writes and no notebook reads back, are left out), drawn at random among its runs that trained no longer than
the kind's median (so the check fits its budget: about 30 minutes on 2 cores). Timings are
never compared (``store.measured``). The five notebooks are then executed, standard profile,
into a temporary folder (the committed notebooks, results and figures are not touched); the
store recomputes exactly the sampled runs, compares them with their records and logs each
comparison. Every record file of the store is also read through its integrity checks (hash,
key). Writes ``results/verify.json``: date, runs checked, identical, the differences, minutes.

Usage: ``python tools/verify.py [--seed N] [--per-kind N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.experiments.store import DamagedRecord, read_entry
from sentence_mtl.io import write_json

STORE = REPO_ROOT / "results" / "store"
OUTPUT = REPO_ROOT / "results" / "verify.json"
TIMINGS = {"sentences_per_second", "speedup"}  # runs that measure time: never compared


def kind(experiment: str, entry: dict) -> str:
    """The stratum of a run: notebook 03's runner (strategy kind); the notebook elsewhere."""
    parts = entry.get("parts")
    runner = parts.get("runner") if isinstance(parts, dict) else None
    return f"{experiment}/{runner}" if runner else experiment


def sample(entries: dict, per_kind: int, seed: int) -> list[tuple[str, str, float]]:
    """(stratum, key, recorded seconds) of the runs to recompute."""
    strata = defaultdict(list)
    for (experiment, key), entry in entries.items():
        if {r["metric"] for r in entry["records"]} & TIMINGS or any(r.get("headline") for r in entry["records"]):
            continue  # timings never repeat; headline runs are read by tools/headline_study.py, not a notebook
        seconds = max(r.get("train_seconds") or 0.0 for r in entry["records"])
        strata[kind(experiment, entry)].append((key, seconds))
    draw = random.Random(seed)
    chosen = []
    for stratum, runs in sorted(strata.items()):
        runs.sort(key=lambda run: (run[1], run[0]))
        affordable = runs[: max(1, (len(runs) + 1) // 2)]  # at most the kind's median training time
        for key, seconds in draw.sample(affordable, min(per_kind, len(affordable))):
            chosen.append((stratum, key, seconds))
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(time.strftime("%Y%m%d")))
    parser.add_argument("--per-kind", type=int, default=1)
    args = parser.parse_args()
    start = time.time()
    entries, damaged = {}, []
    for path in sorted(STORE.glob("*/*.json")):
        try:
            entries[path.parent.name, path.stem] = read_entry(path, path.stem)
        except DamagedRecord as error:
            damaged.append(str(error))
    chosen = sample(entries, args.per_kind, args.seed)
    print(f"{len(entries)} record files read ({len(damaged)} damaged); recomputing {len(chosen)} runs "
          f"(recorded training {sum(s for *_, s in chosen) / 60:.0f} min)", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        keys, log = scratch / "keys.json", scratch / "checks.jsonl"
        keys.write_text(json.dumps([key for _, key, _ in chosen]))
        log.touch()
        env = {**os.environ, "SENTENCE_MTL_PROFILE": "standard", "SENTENCE_MTL_STORE": "reuse",
               "SENTENCE_MTL_STORE_DIR": str(STORE), "SENTENCE_MTL_OUTPUT_DIR": str(scratch / "out"),
               "SENTENCE_MTL_STORE_VERIFY": str(keys), "SENTENCE_MTL_STORE_VERIFY_LOG": str(log),
               "TQDM_DISABLE": "1"}
        for experiment in sorted({key[0] for key in entries}):
            notebook = REPO_ROOT / "notebooks" / f"{experiment}.ipynb"
            if not any(entries.get((experiment, key)) for _, key, _ in chosen):
                continue
            print(f"[{time.strftime('%H:%M:%S')}] executing {notebook.name}", flush=True)
            done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                                   "--ExecutePreprocessor.timeout=-1", "--output-dir", str(scratch), str(notebook)],
                                  env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{notebook.name} failed under make verify:\n{done.stderr[-3000:]}")
        checks = [json.loads(line) for line in log.read_text().splitlines()]
    strata = {key: stratum for stratum, key, _ in chosen}
    for check in checks:
        check["kind"] = strata.get(check["key"], "")
    missing = sorted({key for _, key, _ in chosen} - {c["key"] for c in checks})
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seed": args.seed,
              "cores": os.cpu_count(), "record_files": len(entries) + len(damaged), "damaged": damaged,
              "runs_checked": len(checks), "identical": sum(c["identical"] for c in checks),
              "values_identical": sum(c["values_identical"] for c in checks),
              "largest_value_difference": max((c["largest_value_difference"] for c in checks
                                               if c["largest_value_difference"] is not None), default=None),
              "values_not_comparable": sum(c["largest_value_difference"] is None for c in checks),
              "kinds": sorted(set(strata.values())), "not_reached": missing,
              "minutes": round((time.time() - start) / 60, 1), "checks": checks}
    write_json(OUTPUT, result)
    print(f"{result['identical']} of {result['runs_checked']} runs identical ({result['values_identical']} in every "
          f"metric value; largest metric difference {result['largest_value_difference']}); {len(damaged)} damaged files; "
          f"{len(missing)} sampled runs not reached by a notebook; {result['minutes']} min -> {OUTPUT}")
    return 0 if result["identical"] == result["runs_checked"] and not damaged and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
