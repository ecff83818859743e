"""The tables ``docs/`` shows (run times, soak, results), built from their records."""

import json

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.reporting.readme import results_block, runtime_block, serve_soak_block


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
    assert text.index("takes 268 ms") > text.index("a top-two-blocks step")




def test_a_difference_claim_is_ahead_only_when_its_interval_excludes_zero():
    from sentence_mtl.reporting.claims import claim

    assert claim(0.02, 0.005, 0.035, unit="points", source="t")["verdict"] == "ahead"
    assert claim(0.02, -0.005, 0.045, unit="points", source="t")["verdict"] == "tie"
    assert claim(-0.02, -0.035, -0.005, unit="points", source="t")["verdict"] == "behind"
    assert "verdict" not in claim(0.9, 0.88, 0.92, unit="percent", source="t")
