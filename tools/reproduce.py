"""Execute the notebooks in order (standard profile, in place) and record how long it took.

    python tools/reproduce.py [--store recompute|reuse] [--notebooks 01_sentence_embeddings ...]

``--store recompute`` (``make reproduce``): a reproduction. Every run of the studies is computed
again, except those this reproduction already wrote before it was interrupted: the start time is
kept in ``<cache>/reproduce_since`` until the reproduction finishes, so running the command again
after a kill resumes it. ``--store reuse`` (``make notebooks``): runs the store holds are read back.

Appends one entry to ``results/reproduce_timing.json``: ``cache`` ("cold" when the cache folder was
empty at the start, else "warm"), ``store``, ``total_seconds``, seconds per notebook, the machine's
core count and the date. The run-time table of docs/results.md is generated from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from sentence_mtl.config import REPO_ROOT, cache_dir
from sentence_mtl.fingerprint import notebook_fingerprint
from sentence_mtl.io import atomic_path, write_json

NOTEBOOKS = ("01_sentence_embeddings", "02_multitask_heads", "03_freezing_strategies", "04_training_loop",
             "05_retrieval_finetuning")
TIMING = REPO_ROOT / "results" / "reproduce_timing.json"
WIDGET = "application/vnd.jupyter.widget-view+json"


def is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def execute(stem: str, env: dict) -> float:
    """Run one notebook in place, no cell time limit (a cold study cell runs for hours); its wall
    seconds (kernel start included). Progress bars are
    off (``TQDM_DISABLE``) and widget state is dropped: a committed notebook shows results only.
    The notebook's metadata records the fingerprint of the code it ran (its code cells and the
    package modules they import; ``sentence_mtl.fingerprint``)."""
    path = REPO_ROOT / "notebooks" / f"{stem}.ipynb"
    if not path.is_file():
        raise SystemExit(f"notebook {path} is missing: nothing to execute")
    fingerprint = notebook_fingerprint(path)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    "--ExecutePreprocessor.timeout=-1", str(path)], env={**env, "TQDM_DISABLE": "1"}, check=True)
    seconds = time.perf_counter() - start
    if notebook_fingerprint(path) != fingerprint:
        raise SystemExit(f"the code {stem} runs changed while it ran: its outputs mix two versions; run it again")
    notebook = json.loads(path.read_text())
    notebook["metadata"].pop("widgets", None)
    notebook["metadata"]["sentence_mtl"] = {"code_fingerprint": fingerprint, "profile": "standard"}
    for cell in notebook["cells"]:  # a library's own progress bar (e.g. a Trainer's) is a widget view
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET not in o.get("data", {})]
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=("recompute", "reuse"), default="recompute")
    parser.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS), choices=NOTEBOOKS)
    args = parser.parse_args(argv)

    cache = Path(os.environ.get("SENTENCE_MTL_CACHE", cache_dir()))
    cold = is_empty(cache)
    marker = cache_dir() / "reproduce_since"
    env = {**os.environ, "SENTENCE_MTL_PROFILE": "standard", "SENTENCE_MTL_STORE": args.store}
    resumed = False
    if args.store == "recompute":
        resumed = marker.is_file()
        since = float(marker.read_text()) if resumed else time.time()
        marker.write_text(repr(since))
        env["SENTENCE_MTL_STORE_SINCE"] = repr(since)
    start = time.perf_counter()
    seconds = {}
    for i, stem in enumerate(args.notebooks, 1):
        print(f"==> [{datetime.now():%H:%M:%S}] ({i}/{len(args.notebooks)}) {stem} "
              f"(standard profile, store: {args.store})", flush=True)
        seconds[stem] = round(execute(stem, env), 1)
        print(f"    done in {seconds[stem]:.0f} s", flush=True)
    total = round(time.perf_counter() - start, 1)
    if args.store == "recompute":
        marker.unlink(missing_ok=True)
    if list(args.notebooks) == list(NOTEBOOKS):  # only whole runs are timed in docs/results.md
        runs = json.loads(TIMING.read_text()) if TIMING.is_file() else []
        runs.append({"cache": "cold" if cold else "warm", "store": args.store, "resumed": resumed,
                     "total_seconds": total, "notebook_seconds": seconds, "cores": os.cpu_count(),
                     "date": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        write_json(TIMING, runs)
        print(f"==> all notebooks in {total / 60:.1f} min -> {TIMING.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
