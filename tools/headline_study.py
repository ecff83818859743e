"""Runs the freezing study's headline grid (``grids.HeadlineGrid``) into the run store, so that
notebook 03 reads every run back; a stopped grid resumes where it stopped.

The headline grid is long (hours on 2 CPU cores): this script runs it in the background, apart
from the notebook, with the same keys (``FreezingStudy.headline_runs``), size by size. Records land in
``results/store/03_freezing_strategies/`` as each run finishes.

With ``--loop``, notebook 04's headline grid instead (``grids.LoopHeadline``: the configuration
chosen on validation, the base configuration and the single-task models, on the full test sets).

With ``--claims DIR``, several processes share the grid: each takes the next run that no other
has claimed (a file created once in DIR), so two one-thread processes keep both cores busy
(``make headline``); clear DIR before starting them.

Usage: ``python tools/headline_study.py [--strategies a,b] [--seeds 0,1] [--sizes 8] [--loop]
[--claims DIR]`` (default: the whole grid of the profile that ``SENTENCE_MTL_PROFILE`` names).
"""

import argparse
import os
import time
from pathlib import Path

from sentence_mtl.config import get_profile
from sentence_mtl.data import DataSource
from sentence_mtl.experiments.freezing import FreezingStudy, StudyData
from sentence_mtl.experiments.grids import GRIDS, LOOP_HEADLINES, STUDY_SIZES, grid_for
from sentence_mtl.experiments.multitask_runs import full_test_sets, load_study_data, loop_headline_run
from sentence_mtl.experiments.store import RunStore
from sentence_mtl.results import Recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", help="comma-separated subset of the grid's strategies")
    parser.add_argument("--seeds", help="comma-separated subset of the grid's seeds")
    parser.add_argument("--sizes", help="comma-separated subset of the grid's examples per class")
    parser.add_argument("--loop", action="store_true", help="notebook 04's headline grid instead")
    parser.add_argument("--claims", type=Path, help="a folder where parallel processes claim runs")
    args = parser.parse_args()
    if args.loop:
        return loop(args)
    profile = get_profile()
    grid = grid_for(GRIDS, profile)
    source = DataSource.resolve(profile_name=profile.name)
    runs = grid.headline.runs()
    if args.strategies:
        runs = [r for r in runs if r[0] in args.strategies.split(",")]
    if args.seeds:
        runs = [r for r in runs if str(r[2]) in args.seeds.split(",")]
    if args.sizes:
        runs = [r for r in runs if str(r[1]) in args.sizes.split(",")]
    # Size by size, then seed by seed: the smaller size's cells (the cheaper runs) are decided
    # first, and a stopped grid leaves whole seeds; one head frozen in sequence comes last.
    sizes = [*grid.headline.sizes, None]
    runs.sort(key=lambda r: (sizes.index(r[1]) if r[0] != "sequential" else len(sizes), r[2]))
    data = StudyData.load(grid, profile, source)
    recorder = Recorder("03_freezing_strategies", profile, {}, is_sample=source.is_sample)
    store = RunStore()
    study = FreezingStudy(data, recorder, store).headline_runs()
    start = time.time()
    for i, (name, k, seed) in enumerate(runs, 1):
        if not claimed(args.claims, f"{name}_{k}_{seed}"):
            continue
        before = store.counts["computed"]
        t0 = time.time()
        rows = study.run_any(name, k, seed)
        how = "computed" if store.counts["computed"] > before else "stored"
        values = ", ".join(f"{r['task']} {r.get('stage') or ''} {100 * r['value']:.1f}"
                           + (f" (val {100 * r['val_value']:.1f})" if "val_value" in r else "") for r in rows)
        print(f"[{time.strftime('%H:%M:%S')}] {i}/{len(runs)} {name} k={k} seed={seed}: {how} in "
              f"{time.time() - t0:.0f}s; {values}; {(time.time() - start) / 60:.0f} min so far", flush=True)
    print(store.summary(), flush=True)


def claimed(folder: Path | None, run: str) -> bool:
    """Whether this process takes ``run``: always without a claims folder; else only if it is the
    first to create the run's claim file there."""
    if folder is None:
        return True
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / run, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def loop(args) -> None:
    """Notebook 04's headline grid, run by run, into the run store."""
    profile = get_profile()
    grid = grid_for(LOOP_HEADLINES, profile)
    size = grid_for(STUDY_SIZES, profile)
    source = DataSource.resolve(profile_name=profile.name)
    runs = [(name, seed) for name, seed in grid.runs()
            if (not args.strategies or name in args.strategies.split(","))
            and (not args.seeds or str(seed) in args.seeds.split(","))]
    sources, val_sets, _ = load_study_data(source, size)
    tests = full_test_sets(source, list(sources), profile.max_test_per_task)
    recorder = Recorder("04_training_loop", profile, {}, is_sample=source.is_sample)
    store = RunStore()
    start = time.time()
    for i, (name, seed) in enumerate(runs, 1):
        if not claimed(args.claims, f"loop_{name}_{seed}"):
            continue
        before, t0 = store.counts["computed"], time.time()
        rows = loop_headline_run(store, recorder, name, seed, size, sources, val_sets, tests, dict(size.train_per_class))
        how = "computed" if store.counts["computed"] > before else "stored"
        values = ", ".join(f"{r['task']} {100 * r['value']:.1f}" for r in rows)
        print(f"[{time.strftime('%H:%M:%S')}] {i}/{len(runs)} {name} seed={seed}: {how} in {time.time() - t0:.0f}s; "
              f"{values}; {(time.time() - start) / 60:.0f} min so far", flush=True)
    print(store.summary(), flush=True)


if __name__ == "__main__":
    main()
