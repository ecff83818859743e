"""The claims of the freezing study's headline grid: ten seeds per strategy, the full official test
sets, every predicted label kept, so each difference is paired on seeds and test items.

Read from the run store (``results/store/``) without executing a notebook. The gold test labels
come from the data folder (``SENTENCE_MTL_DATA``); without it, differences fall back to pairing on
seeds alone, and ``headline_pairing`` says which was used.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..experiments import analysis, headline as grid_rule
from .claim import claim, difference, mean_claim, pending_difference, published

CELLS = grid_rule.CELLS
OURS, PEER = "anchored_contrastive", "setfit"
# The paired contrasts the README, report and notebook 03 cite: (a, b, claim name), a minus b.
PAIRS = ((OURS, PEER, "ours_vs_setfit"), ("full_finetune", "frozen_backbone", "full_finetune_vs_frozen"),
         ("label_prior", "frozen_backbone", "label_prior_vs_frozen"),
         ("lp_ft", "full_finetune", "lp_ft_vs_full_finetune"))
SEED_PAIRING = "paired by seed (no gold labels: the data folder was not found)"


def headline_records(results: Path, experiment: str = "03_freezing_strategies") -> list[dict]:
    """``experiment``'s records marked ``headline``, in any results file or in the run store
    (``results/store/``): the runs a headline comparison is decided on, read without executing a
    notebook."""
    from ..experiments.store import read_entry

    found = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        found += [r for r in data if isinstance(r, dict) and r.get("headline")] if isinstance(data, list) else []
    for path in sorted((results / "store").glob("*/*.json")):  # each file's hash and key checked
        found += [r for r in read_entry(path, path.stem)["records"] if r.get("headline")]
    found = [r for r in found if r.get("experiment", experiment) == experiment]
    unique = {(r["task"], r["strategy"], r["n_per_class"], r["seed"], r.get("stage")): r for r in found}
    return list(unique.values())


def test_resamples(tasks) -> dict:
    """{task: ``analysis.ItemResamples`` of its official test labels}, or {} without real data."""
    from ..data import load_task
    from ..data_folder import DataError, DataSource

    try:
        source = DataSource.resolve(profile_name="standard")
    except DataError:
        return {}
    if source.is_sample:
        return {}
    return {t: analysis.ItemResamples(load_task(t, "test", source).labels) for t in tasks}


def headline(results: Path) -> dict:
    found = headline_records(results)
    records = [r for r in found if not r.get("stage")]
    src = "results/store/03_freezing_strategies (headline records)"
    items = test_resamples(sorted({task for task, _ in CELLS})) if records else {}
    pairing = analysis.BOOTSTRAP_METHOD if items else SEED_PAIRING
    out: dict = {"headline_pairing": claim(pairing, unit="name", source="analysis.paired_items")}
    grid = grid_rule.grid()

    for task, k in CELLS:
        for s in grid.strategies:
            out[f"headline_{s}_{task}_{k}"] = mean_claim(records, s, task, k, source=src)
        for a, b, name in PAIRS:
            d = grid_rule.paired_to(records, a, b, task, k, items.get(task))
            out[f"headline_{name}_{task}_{k}"] = pending_difference(
                d, f"{src}: {a} minus {b}, {task}, {k}/class, {pairing}", items=d and d.get("items"))
    table = grid_rule.headline_rows(records, items)
    out["headline_table"] = claim(
        [headline_row(r, f"{src}: headline.headline_rows, {pairing}") for r in table],
        unit="rows", source=f"{src}: headline.headline_rows, {pairing}")
    done = {(r["strategy"], r["n_per_class"], r["seed"], r["task"]) for r in records}
    out["headline_task_runs_done"] = claim(
        sum((s, k, seed, task) in done for task, k in CELLS for s in grid.strategies for seed in grid.seeds),
        unit="count", source=f"{src}: (strategy, size, seed, task) of the headline grid")
    out["headline_task_runs_needed"] = claim(
        len(CELLS) * len(grid.strategies) * len(grid.seeds), unit="count", source="grids.HeadlineGrid")
    out["headline_seeds"] = claim(len(grid.seeds), unit="count", source="grids.HeadlineGrid.seeds")
    out["headline_setfit_mpnet_topic_8_published"] = published("ag_news_8_setfit_mpnet_templates", "percent")

    out["headline_head_frozen_change"] = _forgetting(found, items, pairing, src)
    out.update(_interval_widening(records, table if items else [], src))
    rows = [printable_row(r, f"{src}: headline.recommendation, {pairing}")
            for r in grid_rule.recommendation(records, labels=items)]
    out["freeze_recommendation"] = claim(
        rows, unit="rows", source=f"{src}: headline.recommendation, {pairing}")
    out["freeze_recommendation_decided"] = claim(
        sum(r["decided"] for r in rows), unit="count", source="headline.recommendation")
    open_cells = [r for r in rows if not r["decided"]]
    out["freeze_headline_runs_done"] = claim(
        sum(r["runs"] for r in open_cells), unit="count", source="headline.recommendation: undecided cells")
    out["freeze_headline_runs_needed"] = claim(
        sum(r["runs_needed"] for r in open_cells), unit="count",
        source="headline.recommendation: undecided cells")
    return out


def headline_row(row: dict, source: str) -> dict:
    """A row of the headline table with its numbers as claims (validation and test score, the
    difference to the best on validation, training seconds), printed by the filters."""
    where = f"{source}: {row['strategy']}, {row['task']}, {row['k']}/class"
    return {**row,
            "val": claim(row["val_value"], unit="percent", source=f"{where}, validation mean"),
            "score": claim(row["value"], row["low"], row["high"], unit="percent", source=where,
                           seeds=row["seeds"], items=row["n_test"]),
            "minus": difference(row["minus_best"], f"{where}, minus the best on validation"),
            "seconds": claim(row["train_seconds"], unit="seconds", source=f"{where}, median")}


def printable_row(row: dict, source: str) -> dict:
    """A decided recommendation row with its test score and training time as claims, so a
    template prints them with the filters every other number goes through."""
    if not row["decided"]:
        return row
    where = f"{source}: {row['chosen']}, {row['task']}, {row['k']}/class"
    return {**row,
            "score": claim(row["value"], row["low"], row["high"], unit="percent", source=where,
                           seeds=row["seeds"], items=row["n_test"]),
            "seconds": claim(row["train_seconds"], unit="seconds", source=f"{where}, median"),
            "best_seconds": claim(row["best_train_seconds"], unit="seconds",
                                  source=f"{where}: {row['best_on_validation']}, median"),
            "minus_best": difference(row["difference"],
                                     f"{where}, minus {row['best_on_validation']} on test")}


def _interval_widening(records: list[dict], table: list[dict], src: str) -> dict:
    """Why the rule's validation difference is paired by seed alone: the median, over every
    strategy against its cell's best on validation (``table``: ``headline.headline_rows``), of
    the 95% interval's width with an item term over its seed-only width. On test the item term
    comes from the two-level bootstrap (items paired); on validation it would have to count both
    strategies' errors as independent."""
    from statistics import median

    val = [{**r, "value": r["val_value"], "n_test": r.get("n_val")} for r in records]
    test = [{**r, "n_test": None} for r in records]
    val_ratios, test_ratios = [], []
    for row in table:
        if row["minus_best"] is None:  # the best itself
            continue
        s, best, task, k = row["strategy"], row["best_on_validation"], row["task"], row["k"]
        seed_val = grid_rule.paired_on_validation(records, s, best, task, k)
        seed_test = analysis.paired(test, s, best, task, k)
        if seed_val["high"] == seed_val["low"] or seed_test["high"] == seed_test["low"]:
            continue  # no seed spread to compare against
        wide = analysis.paired(val, s, best, task, k)
        val_ratios.append((wide["high"] - wide["low"]) / (seed_val["high"] - seed_val["low"]))
        boot = row["minus_best"]
        test_ratios.append((boot["high"] - boot["low"]) / (seed_test["high"] - seed_test["low"]))
    how = f"{src}: median over strategies and cells of the 95% interval's width over the seed-only width"
    val_median = median(val_ratios) if val_ratios else None
    test_median = median(test_ratios) if test_ratios else None
    return {"headline_val_independent_widening": claim(
                val_median, unit="ratio", source=f"{how}, validation, items as independent"),
            "headline_test_paired_widening": claim(
                test_median, unit="ratio", source=f"{how}, test, {analysis.BOOTSTRAP_METHOD}")}


def _forgetting(found: list[dict], items: dict, pairing: str, src: str) -> dict:
    """Topic after the sentiment stage minus after the topic stage, with the topic head frozen
    and the encoder trained (``sequential_trainable_backbone``), on the full topic test set."""
    variant = "sequential_trainable_backbone"
    staged = [{**r, "strategy": f"{variant}/{r['stage']}", "stage": None} for r in found
              if r["strategy"] == variant and r.get("stage") and r["task"] == "topic"]
    k = staged[0]["n_per_class"] if staged else None
    after, before = f"{variant}/after_sentiment", f"{variant}/after_topic"
    d = grid_rule.paired_to(staged, after, before, "topic", k, items.get("topic")) if staged else None
    return pending_difference(d, f"{src}: {variant}, topic after_sentiment minus after_topic, {pairing}",
                              items=d and d.get("items"))


def loop_headline(results: Path) -> dict:
    """Notebook 04's main contrast at many seeds (``grids.LoopHeadline``): the configuration chosen
    on validation against each task's single-task model and against the base configuration."""
    from ..experiments.grids import LOOP_HEADLINES

    grid = LOOP_HEADLINES["standard"]
    records = headline_records(results, "04_training_loop")
    src = "results/store/04_training_loop (headline records)"
    tasks = ("topic", "sentiment")
    items = test_resamples(tasks) if records else {}
    pairing = analysis.BOOTSTRAP_METHOD if items else SEED_PAIRING
    done = {(r["strategy"], r["seed"]) for r in records}
    out = {
        "loop_headline_runs_done": claim(sum(run in done for run in grid.runs()), unit="count",
                                         source=f"{src}: (configuration, seed) of grids.LoopHeadline"),
        "loop_headline_runs_needed": claim(len(grid.runs()), unit="count", source="grids.LoopHeadline"),
    }
    for task in tasks:
        k = next((r["n_per_class"] for r in records if r["task"] == task), None)
        for tag, other in (("single", f"single_task_{task}"), ("base", grid.base)):
            d = grid_rule.paired_to(records, grid.chosen, other, task, k, items.get(task))
            out[f"loop_headline_chosen_vs_{tag}_{task}"] = pending_difference(
                d, f"{src}: {grid.chosen} minus {other}, {task}, {pairing}", items=d and d.get("items"))
    # The contrast's reading for the templates: pending until every run is in, then both tasks
    # tied, a trade (one ahead, one behind), or separated.
    verdicts = sorted(str(out[f"loop_headline_chosen_vs_base_{task}"].get("verdict")) for task in tasks)
    outcome = ("pending" if out["loop_headline_runs_done"]["value"] < len(grid.runs())
               else "tie" if verdicts == ["tie", "tie"] else "trade" if verdicts == ["ahead", "behind"]
               else "separated")
    out["loop_headline_outcome"] = claim(outcome, unit="name", source=f"{src}: verdicts against {grid.base}")
    # What validation chose on: each run's best mean of the two tasks' validation metrics (both
    # task records carry it), paired by seed; the validation items are not kept.
    validation = [{**r, "value": r["validation_metric"], "n_test": None} for r in records
                  if r["task"] == "topic" and r.get("validation_metric") is not None]
    k = next((r["n_per_class"] for r in validation), None)
    out["loop_headline_validation_chosen_vs_base"] = pending_difference(
        analysis.paired(validation, grid.chosen, grid.base, "topic", k),
        f"{src}: {grid.chosen} minus {grid.base}, validation metric (mean of both tasks), paired by seed")
    return out
