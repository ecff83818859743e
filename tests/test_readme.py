"""The README's generated blocks must be what tools/update_readme.py writes."""

import json

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.reporting.readme import (END, RUNTIME_END, RUNTIME_START, SOAK_END, SOAK_START, START,
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
        "README run-time block is stale (results/reproduce_timing.json changed): run `.venv/bin/python tools/update_readme.py`")


def test_readme_serve_soak_block_is_current():
    readme = (REPO_ROOT / "README.md").read_text()
    assert SOAK_START in readme and SOAK_END in readme
    assert replace_block(readme, serve_soak_block(), SOAK_START, SOAK_END) == readme, (
        "README soak block is stale: run `.venv/bin/python tools/update_readme.py`")


def test_readme_container_block_is_current():
    from sentence_mtl.reporting.benchmark_tables import CONTAINER_END, CONTAINER_START, container_block

    readme = (REPO_ROOT / "README.md").read_text()
    assert replace_block(readme, container_block(REPO_ROOT / "results"), CONTAINER_START, CONTAINER_END) == readme, (
        "README container block is stale: run `.venv/bin/python tools/update_readme.py`")


def test_serve_soak_block_states_a_missed_target(tmp_path):
    soak = json.loads((REPO_ROOT / "results" / "serve_soak.json").read_text())
    (tmp_path / "serve_soak.json").write_text(json.dumps({**soak, "health_p95_s": 2.5, "rss_end_over_start": 3.0}))
    block = serve_soak_block(tmp_path)
    assert "| < 1 s | missed (2.50x) |" in block and "| <= 1.2x | missed |" in block
    assert "No soak run" in serve_soak_block(tmp_path / "empty")


def test_results_block_reports_missing_results(tmp_path):
    assert "No results yet" in results_block(tmp_path)


def test_runtime_table_shows_the_latest_whole_run_of_each_kind(tmp_path):
    run = {"notebook_seconds": {"01_a": 120.0, "02_b": 60.0}, "cores": 2, "resumed": False}
    runs = [{**run, "cache": "cold", "store": "recompute", "total_seconds": 999.0, "date": "2026-01-01T00:00:00"},
            {**run, "cache": "cold", "store": "recompute", "total_seconds": 180.0, "date": "2026-01-02T00:00:00"},
            {**run, "cache": "warm", "store": "recompute", "total_seconds": 5.0, "date": "2026-01-03T00:00:00",
             "resumed": True},  # a resumed reproduction is not a whole run
            {**run, "cache": "warm", "store": "reuse", "total_seconds": 30.0, "date": "2026-01-04T00:00:00",
             "notebook_seconds": {"01_a": 18.0, "02_b": 12.0}}]
    (tmp_path / "reproduce_timing.json").write_text(json.dumps(runs))
    block = runtime_block(tmp_path)
    assert "| `01_a` | 2.0 | 0.3 |" in block and "| **all notebooks** | **3.0** | **0.5** |" in block
    assert "2 cores, 2026-01-02" in block and "999" not in block
    assert "No whole run timed yet" in runtime_block(tmp_path / "none")


def test_what_the_cache_removes_is_stated_only_for_the_top2_step():
    from sentence_mtl.reporting.readme import freezing_tables

    shared = {"task": "cache_benchmark", "metric": "speedup", "top2_step_full_forward_s": 0.268,
              "top2_lower_forward_s": 0.127}
    records = [{**shared, "strategy": "heads_epoch_ratio", "value": 697.0, "target": 100},
               {**shared, "strategy": "top2_step_ratio", "value": 1.93, "target": 2}]
    text = freezing_tables(records)
    assert text.count("takes 268 ms, of which") == 1 and text.count("take 127 ms") == 1
    assert text.index("takes 268 ms") > text.index("top2_step_ratio")


def test_readme_answers_block_is_current():
    from sentence_mtl.reporting.answers import ANSWERS_END, ANSWERS_START, answers_block

    readme = (REPO_ROOT / "README.md").read_text()
    assert readme.index("## Answers") < readme.index(ANSWERS_START) < readme.index("## Results"), (
        "the answers come first, before the tables")
    assert replace_block(readme, answers_block(), ANSWERS_START, ANSWERS_END) == readme, (
        "README answers block is stale: run `.venv/bin/python tools/update_readme.py`")


def test_answers_call_a_difference_only_when_its_interval_excludes_zero():
    from sentence_mtl.reporting.answers import embeddings

    def probe(strategy, seed, value):
        return {"task": "topic", "strategy": strategy, "seed": seed, "n_per_class": 8, "value": value,
                "n_test": 7600, "metric": "accuracy"}

    base = [{"task": "parity", "strategy": "ours_vs_sentence_transformers", "value": 1e-7, "n_test": 8},
            *({"task": "sts", "strategy": s, "value": v, "n_test": 1379}
              for s, v in (("mean_pooling", 0.82), ("max_pooling", 0.79), ("cls_pooling", 0.73)))]
    clear = base + [probe("frozen_minilm_logreg", s, 0.74 + 0.001 * s) for s in range(3)] + \
        [probe("tfidf_logreg", s, 0.49 + 0.001 * s) for s in range(3)]
    assert "ahead" in embeddings(clear)
    noisy = base + [probe("frozen_minilm_logreg", s, v) for s, v in enumerate((0.70, 0.50, 0.60))] + \
        [probe("tfidf_logreg", s, v) for s, v in enumerate((0.55, 0.60, 0.50))]
    assert "a tie" in embeddings(noisy) and "ahead" not in embeddings(noisy)
