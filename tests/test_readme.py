"""The tables ``docs/`` shows (run times, soak, results), built from their records."""

import json

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.reporting.tables import runtime, soak, tables


def test_soak_table_shows_measured_against_target():
    record = json.loads((REPO_ROOT / "results" / "serve_soak.json").read_text())
    table = soak({**record, "health_p95_s": 2.5, "rss_end_over_start": 3.0})["soak"]
    assert "| 2500 ms | < 1 s |" in table and "3.00x" in table


def test_tables_skip_missing_results(tmp_path):
    assert tables(tmp_path) == {}


def test_runtime_table_shows_the_latest_whole_run_of_each_kind():
    run = {"notebook_seconds": {"01_a": 120.0, "02_b": 60.0}, "cores": 2, "resumed": False}
    runs = [{**run, "cache": "cold", "store": "recompute", "total_seconds": 999.0, "date": "2026-01-01T00:00:00"},
            {**run, "cache": "cold", "store": "recompute", "total_seconds": 180.0, "date": "2026-01-02T00:00:00"},
            {**run, "cache": "warm", "store": "recompute", "total_seconds": 5.0, "date": "2026-01-03T00:00:00",
             "resumed": True},  # a resumed reproduction is not a whole run
            {**run, "cache": "warm", "store": "reuse", "total_seconds": 30.0, "date": "2026-01-04T00:00:00",
             "notebook_seconds": {"01_a": 18.0, "02_b": 12.0}}]
    table = runtime(runs)["runtime"]
    assert "| `01_a` | 2.0 | 0.3 |" in table and "| **all notebooks** | **3.0** | **0.5** |" in table
    assert "2 cores, 2026-01-02" in table and "999" not in table
    assert runtime([]) == {}


def test_a_difference_claim_is_ahead_only_when_its_interval_excludes_zero():
    from sentence_mtl.reporting.claims import claim

    assert claim(0.02, 0.005, 0.035, unit="points", source="t")["verdict"] == "ahead"
    assert claim(0.02, -0.005, 0.045, unit="points", source="t")["verdict"] == "tie"
    assert claim(-0.02, -0.035, -0.005, unit="points", source="t")["verdict"] == "behind"
    assert "verdict" not in claim(0.9, 0.88, 0.92, unit="percent", source="t")
