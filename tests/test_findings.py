"""Notebook 03's findings are rendered from its records: numbers, gaps and their signs follow the data."""

from sentence_mtl.reporting.findings import Runs, freezing_findings


def record(strategy, task, k, seed, value, **extra):
    return {"strategy": strategy, "task": task, "n_per_class": k, "seed": seed, "value": value, **extra}


def test_gaps_are_paired_and_ties_are_called_by_their_interval():
    records = [record("a", "topic", 8, s, v) for s, v in enumerate((0.80, 0.82, 0.81))]
    records += [record("b", "topic", 8, s, v) for s, v in enumerate((0.70, 0.71, 0.72))]
    records += [record("c", "topic", 8, s, v) for s, v in enumerate((0.79, 0.83, 0.75))]
    runs = Runs(records)
    assert runs.pct("a", "topic", 8) == "81.0 ± 1.0"
    assert runs.versus("a", "b", "topic", 8) == "+10.0 points, 95% CI +7.5 to +12.5: ahead"
    assert runs.versus("b", "a", "topic", 8).endswith(": behind")
    assert runs.versus("a", "c", "topic", 8).startswith("+2.0 points") and runs.versus("a", "c", "topic", 8).endswith(
        ": a tie")
    assert runs.versus("a", "missing", "topic", 8) == "not measured"


def test_ranges_over_sizes_and_rendering_without_every_strategy():
    records = [record("x", "topic", k, 0, 0.5 + d) for k, d in ((8, 0.01), (32, 0.03))]
    records += [record("y", "topic", k, 0, 0.5) for k in (8, 32)]
    assert Runs(records).gap_range("x", "y") == "+1.0 to +3.0"
    text = freezing_findings(records + [record("zero_shot", "topic", 0, 0, 0.743)])
    assert "reaches 74.3 on AG News" in text and "n/a" in text  # what did not run says so, no crash
