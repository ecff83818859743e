"""The README's generated blocks must be what tools/update_readme.py writes."""

import json

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.tables import (END, RUNTIME_END, RUNTIME_START, SOAK_END, SOAK_START, START, notebook_seconds,
                                 replace_block, results_block, runtime_block, serve_soak_block)


def test_readme_results_block_is_current():
    readme = (REPO_ROOT / "README.md").read_text()
    assert START in readme and END in readme
    assert replace_block(readme, results_block()) == readme, (
        "README results block is stale: run `.venv/bin/python tools/update_readme.py`")


def test_readme_runtime_block_is_current():
    readme = (REPO_ROOT / "README.md").read_text()
    assert RUNTIME_START in readme and RUNTIME_END in readme
    assert replace_block(readme, runtime_block(), RUNTIME_START, RUNTIME_END) == readme, (
        "README run-time block is stale (a notebook was re-executed): run `.venv/bin/python tools/update_readme.py`")


def test_readme_serve_soak_block_is_current():
    readme = (REPO_ROOT / "README.md").read_text()
    assert SOAK_START in readme and SOAK_END in readme
    assert replace_block(readme, serve_soak_block(), SOAK_START, SOAK_END) == readme, (
        "README soak block is stale: run `.venv/bin/python tools/update_readme.py`")


def test_serve_soak_block_states_a_missed_target(tmp_path):
    soak = json.loads((REPO_ROOT / "results" / "serve_soak.json").read_text())
    (tmp_path / "serve_soak.json").write_text(json.dumps({**soak, "health_p95_s": 2.5, "rss_end_over_start": 3.0}))
    block = serve_soak_block(tmp_path)
    assert "| < 1 s | missed (2.50x) |" in block and "| <= 1.2x | missed |" in block
    assert "No soak run" in serve_soak_block(tmp_path / "empty")


def test_results_block_reports_missing_results(tmp_path):
    assert "No results yet" in results_block(tmp_path)


def _cell(begin: str, end: str) -> dict:
    return {"cell_type": "code", "source": "", "outputs": [],
            "metadata": {"execution": {"iopub.execute_input": begin, "shell.execute_reply": end}}}


def test_runtime_sums_the_cells_of_each_executed_notebook(tmp_path):
    cells = [_cell("2026-01-01T10:00:00Z", "2026-01-01T10:02:00Z"),
             {"cell_type": "markdown", "source": "", "metadata": {}},
             _cell("2026-01-01T10:05:00.5Z", "2026-01-01T10:06:00.5Z")]
    (tmp_path / "01_a.ipynb").write_text(json.dumps({"cells": cells}))
    (tmp_path / "02_b.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {}}]}))
    assert notebook_seconds(tmp_path / "01_a.ipynb") == 180.0  # the idle time between cells is not counted
    block = runtime_block(tmp_path)
    assert "| `01_a.ipynb` | 3 |" in block and "| `02_b.ipynb` | not executed |" in block
    assert "| **all notebooks** | **3** |" in block


def test_what_the_cache_removes_is_stated_only_for_the_top2_step():
    from sentence_mtl.tables import freezing_tables

    shared = {"task": "cache_benchmark", "metric": "speedup", "top2_step_full_forward_s": 0.268,
              "top2_lower_forward_s": 0.127}
    records = [{**shared, "strategy": "heads_epoch_ratio", "value": 697.0, "target": 100},
               {**shared, "strategy": "top2_step_ratio", "value": 1.93, "target": 2}]
    text = freezing_tables(records)
    assert text.count("takes 268 ms, of which") == 1 and text.count("take 127 ms") == 1
    assert text.index("takes 268 ms") > text.index("top2_step_ratio")


def test_study_speedup_projection_counts_each_run_once_and_leaves_setfit_alone(tmp_path):
    from sentence_mtl.tables import study_speedups_table

    notebooks, results = tmp_path / "nb", tmp_path / "results"
    notebooks.mkdir(), results.mkdir()
    (notebooks / "01_a.ipynb").write_text(json.dumps({"cells": [_cell("2026-01-01T10:00:00Z", "2026-01-01T10:10:00Z")]}))
    (notebooks / "03_b.ipynb").write_text(json.dumps({"cells": [_cell("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")]}))
    run = {"n_per_class": 8, "seed": 0}
    study = [{**run, "task": t, "strategy": "full_finetune", "train_seconds": 1800.0} for t in ("topic", "sentiment")]
    study.append({**run, "task": "topic", "strategy": "setfit", "train_seconds": 600.0})
    (results / "03_freezing_strategies.json").write_text(json.dumps(study))
    config = {"n_texts": 512, "batch_size": 16}
    levers = [{"strategy": s, "value": v, "speedup": x, "padding_share": p, "config": config}
              for s, v, x, p in (("study_loop", 1.0, 1.0, 0.44), ("parallel_seeds", 1.5, 1.5, 0.44),
                                 ("length_grouped", 2.0, 2.0, 0.12))]
    text = study_speedups_table(levers, results, notebooks)
    assert "| 2.00x | 12% |" in text
    # 40 training minutes (each run once), 10 of them SetFit's: 30 / 3 = 10 left, so 60 - 20 = 40; 10 + 40 = 50
    assert "Training is 40 of notebook 03's 60 minutes (10 of them SetFit's" in text
    assert "(3.00x), 03 would take about 40 minutes and all notebooks about 50." in text
