"""The report (report.pdf from report/report.typ and report/data.json): its numbers are the
result files' numbers, it builds from the committed results, and it fails clearly on bad input.

Notebook 03's results file may not exist yet, so its section is tested on a small synthetic
file written to a temporary folder (never to results/)."""

from __future__ import annotations

import json
import random
import shutil
import statistics
import struct
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader

from sentence_mtl.experiments import analysis
from sentence_mtl.reporting import report, report_sections
from sentence_mtl.config import REPO_ROOT
from sentence_mtl.references import PUBLISHED

RESULTS = REPO_ROOT / "results"
FIGURES = REPO_ROOT / "figures"
STRATEGIES = ["zero_shot", "nearest_centroid", "frozen_backbone", "top1_unfrozen", "top2_unfrozen",
              "full_finetune", "gradual_unfreezing", "llrd_0.95", "llrd_2.6", "lora", "setfit",
              "sequential_frozen_backbone", "sequential_trainable_backbone", "sequential_lora"]
FROZEN = {"zero_shot", "nearest_centroid", "frozen_backbone"}


def synthetic_03(sizes=(8, 64, None), seeds=(0, 1, 2)) -> list[dict]:
    """Records in the planned schema of results/03_freezing_strategies.json (random values)."""
    rng = random.Random(0)
    records = []

    def add(task, strategy, seed, k, value, **extra):
        frozen = strategy in FROZEN
        records.append({
            "experiment": "03_freezing_strategies", "task": task,
            "dataset": "ag_news" if task == "topic" else "tweeteval_sentiment", "split": "test",
            "strategy": strategy, "seed": seed, "n_per_class": k,
            "metric": "accuracy" if task == "topic" else "macro_recall", "value": value,
            "n_test": (7600 if task == "topic" else 12284) if frozen else 1000,
            "train_seconds": rng.uniform(1, 300), "trainable_params": rng.randint(1000, 22_000_000),
            "peak_memory_mb": rng.uniform(10, 3000), "profile": "standard", "config": {}, **extra})

    for task in ("topic", "sentiment"):
        add(task, "zero_shot", 0, 0, rng.uniform(0.3, 0.7))
    for k in sizes:
        for seed in seeds:
            for strategy in STRATEGIES[1:]:
                for task in ("topic", "sentiment"):
                    base = 0.8 if task == "topic" else 0.55
                    if strategy.startswith("sequential_"):
                        if task == "topic":
                            add(task, strategy, seed, k, rng.uniform(base, base + 0.1), stage="after_topic")
                        add(task, strategy, seed, k, rng.uniform(base - 0.1, base + 0.1), stage="after_sentiment")
                    else:
                        add(task, strategy, seed, k, rng.uniform(base - 0.1, base + 0.1))
    return records


def tiny_png(path: Path) -> None:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(2))  # 4 x 2 red pixels
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 2, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pdf_text(path: Path) -> str:
    return "".join(page.extract_text() for page in PdfReader(path).pages)


def squash(text: str) -> str:
    return "".join(text.split())


def cells(node):
    """Every summarised number in data.json: dicts with a mean and the records they come from."""
    if isinstance(node, dict):
        if "source" in node and "mean" in node:
            yield node
        for value in node.values():
            yield from cells(value)
    elif isinstance(node, list):
        for value in node:
            yield from cells(value)


def check_cells_against_records(data: dict, results_dir: Path) -> int:
    checked = 0
    for c in cells(data):
        records = json.loads((results_dir / f"{c['source']['file']}.json").read_text())
        if c["source"]["file"] in analysis.HEADLINE_STEMS:  # the report reads headline runs apart
            records = analysis.without_headline(records)
        chosen = [r for r in records if all(r.get(k) == v for k, v in c["source"]["where"].items())]
        values = [r["value"] for r in chosen]
        assert values, c["source"]
        assert c["mean"] == pytest.approx(statistics.fmean(values), abs=1e-12), c["source"]
        assert c["seeds"] == len(values)
        if len(values) > 1:
            assert c["std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
            assert c["text"] == f"{100 * c['mean']:.1f} ± {100 * c['std']:.1f}"
        checked += 1
    return checked


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """data.json and the PDF built from the committed results/ and figures/."""
    out = tmp_path_factory.mktemp("report")
    pdf = report.build(RESULTS, FIGURES, out / "report.pdf", out / "data.json")
    return json.loads((out / "data.json").read_text()), pdf


@pytest.fixture(scope="module")
def with_03(tmp_path_factory):
    """The committed results plus a synthetic 03 file, and one synthetic 03 figure."""
    out = tmp_path_factory.mktemp("report03")
    results, figures = out / "results", out / "figures"
    shutil.copytree(RESULTS, results)
    figures.mkdir()
    tiny_png(figures / "03_fixture_strategy_curves.png")
    (results / "03_freezing_strategies.json").write_text(json.dumps(synthetic_03()))
    pdf = report.build(results, figures, out / "report.pdf", out / "data.json")
    return json.loads((out / "data.json").read_text()), pdf, results


# --------------------------------------------------------------------------- (a) numbers


def test_every_number_in_data_json_is_recomputed_from_the_records(committed):
    data, _ = committed
    present = [p.stem for p in RESULTS.glob("*.json") if p.stem in report.STEMS]
    assert check_cells_against_records(data, RESULTS) > 50
    sourced = {c["source"]["file"] for c in cells(data)}
    assert set(present) <= sourced, f"results files with no number in the report: {set(present) - sourced}"


def test_sampled_values_equal_direct_means(committed):
    """A few cells found by hand, independently of the cell machinery."""
    data, _ = committed
    records = json.loads((RESULTS / "01_sentence_embeddings.json").read_text())
    mean_pooling = next(r["value"] for r in records if r["task"] == "sts" and r["strategy"] == "mean_pooling")
    assert next(r for r in data["task1"]["sts"] if r["encoder"] == "mean_pooling")["cell"]["mean"] == mean_pooling
    probe = [r["value"] for r in records if (r["task"], r["strategy"], r["n_per_class"]) == ("topic", "frozen_minilm_logreg", 8)]
    row = next(r for r in data["task1"]["probes"] if (r["task"], r["features"]) == ("topic", "frozen_minilm_logreg"))
    assert row["cells"][data["task1"]["probe_sizes"].index("8")]["mean"] == pytest.approx(statistics.fmean(probe))
    loop = json.loads((RESULTS / "04_training_loop.json").read_text())
    for row in data["task4"]["rows"]:
        values = [r["value"] for r in loop if r["strategy"] == row["strategy"]
                  and r["task"] == "topic" and not r.get("headline")]  # headline runs are read apart
        if values:
            assert row["topic"]["mean"] == pytest.approx(statistics.fmean(values))
    trained = json.loads((RESULTS / "train_multitask.json").read_text())
    assert [r["cell"]["mean"] for r in data["trained"]["rows"]] == [r["value"] for r in trained]


def test_published_values_come_from_references(committed):
    data, _ = committed
    assert [p["key"] for p in data["published"]] == list(PUBLISHED)
    for p in data["published"]:
        assert p["value"] == PUBLISHED[p["key"]][0]
        assert float(p["text"]) == pytest.approx(100 * p["value"])
        assert p["cite"], f"{p['key']} has no citation"
    bib = (REPO_ROOT / "report" / "references.bib").read_text()
    for key in {k for keys in report_sections.CITATIONS.values() for k in keys}:
        assert f"{{{key}," in bib


def test_data_facts_are_the_documented_ones():
    readme = (REPO_ROOT / "data" / "README.md").read_text()
    for name, value in report_sections.DATA_FACTS.items():
        assert f"{value:,}" in readme, f"{name} = {value:,} is not stated in data/README.md"


def test_numbers_printed_in_the_pdf_are_those_of_data_json(committed):
    data, pdf = committed
    text = squash(pdf_text(pdf))
    missing = [c["text"] for c in cells(data) if squash(c["text"]) not in text]
    assert not missing, f"numbers of data.json absent from the PDF: {missing[:10]}"
    for p in data["published"]:
        assert squash(p["text"]) in text
    for fact in data["setup"]["data"].values():
        assert fact in text


def test_typst_source_types_no_result():
    """The digits left in report.typ are layout (sizes, colours, numbering), list items (1)-(4),
    notebook numbers, the x100 of percentages and the years of the SemEval data: every number
    it prints is read from data.json."""
    import re

    source = (REPO_ROOT / "report" / "report.typ").read_text()
    code = "\n".join(line.split("//")[0] for line in source.splitlines())
    code = re.sub(r'"[^"\n]*"', "", code)  # strings: numbering patterns, figure prefixes
    code = re.sub(r"\b\d+(\.\d+)?(pt|em|cm|fr|%)", "", code)  # lengths
    code = re.sub(r"(luma|rgb)\([^)]*\)", "", code)  # colours
    code = re.sub(r"<[\w.-]+>", "", code)  # labels and citation keys
    code = re.sub(r"\b[\w\\@-]*[A-Za-z][\w\\@-]*\b",  # names with digits: L2, v2, NDCG@10
                  lambda m: "" if re.search(r"\d", m.group()) else m.group(), code)
    numbers = set(re.findall(r"\d+(?:\.\d+)?", code))
    allowed = {"0", "1", "2", "3", "4", "01", "02", "03", "04", "05", "100", "2013", "16"}
    assert numbers <= allowed, f"typed numbers in report.typ: {sorted(numbers - allowed)}"


# --------------------------------------------------------------------------- (b) the PDF builds


def test_pdf_builds_from_the_committed_results(committed):
    data, pdf = committed
    blob = pdf.read_bytes()
    assert blob.startswith(b"%PDF")
    assert len(PdfReader(pdf).pages) > 3
    text = pdf_text(pdf)
    for heading in ("Set-up", "Task 1", "Task 2", "Task 3", "Task 4", "Comparison of strategies",
                    "Retrieval", "Limitations", "References"):
        assert heading in text
    for prefix in ("01", "04", "05"):
        names = sorted(p.stem for p in FIGURES.glob(f"{prefix}_*.png"))
        assert names and sorted(f["name"] for f in data["figures"][prefix]) == names
        for name in names:
            assert f"{name}.png" in squash(text)


# --------------------------------------------------------------------------- (c) 03 and bad input


def test_missing_03_renders_not_yet_run(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    (results / "03_freezing_strategies.json").unlink(missing_ok=True)
    pdf = report.build(results, FIGURES, tmp_path / "report.pdf", tmp_path / "data.json")
    data = json.loads((tmp_path / "data.json").read_text())
    assert data["task3"] is None
    text = squash(pdf_text(pdf))
    assert squash("Not yet run: results/03_freezing_strategies.json does not exist") in text


def test_03_section_when_present(with_03):
    data, pdf, results = with_03
    t3 = data["task3"]
    assert t3 is not None and t3["sizes"] == ["8", "64", "all"]
    assert check_cells_against_records(data, results) > 100
    text = squash(pdf_text(pdf))
    assert squash("Not yet run: results/03") not in text
    assert squash("other runs on the test subsets, per task and size") in text
    assert "03_fixture_strategy_curves.png" in text
    # the recommendation is, per size and task, the strategy with the best mean; the sequential
    # variants (a forgetting experiment) never compete
    records = synthetic_03()
    for rec in t3["recommendations"]:
        k = None if rec["size"] == "all" else int(rec["size"])
        means = {}
        for s in [s for s in STRATEGIES[1:] if not s.startswith("sequential_")]:
            values = [r["value"] for r in records if r["strategy"] == s and r["task"] == rec["task"]
                      and r["n_per_class"] == k and r.get("stage") is None]
            means[s] = statistics.fmean(values)
        assert rec["strategy"] == max(means, key=means.get)
        assert squash(rec["cell"]["text"]) in text
    assert len(t3["recommendations"]) == 2 * len(t3["sizes"])
    # forgetting = after_topic - after_sentiment, per seed, averaged
    row = next(r for r in t3["forgetting"] if r["strategy"] == "sequential_lora" and r["size"] == "8")
    drops = [a["value"] - b["value"] for a in records for b in records
             if a["strategy"] == b["strategy"] == "sequential_lora" and a["task"] == b["task"] == "topic"
             and a["n_per_class"] == b["n_per_class"] == 8 and a["seed"] == b["seed"]
             and a["stage"] == "after_topic" and b["stage"] == "after_sentiment"]
    assert row["forgetting"]["mean"] == pytest.approx(statistics.fmean(drops))
    assert squash(row["forgetting"]["text"]) in text


def test_missing_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(report.ReportError, match="does not exist"):
        report.build(tmp_path / "nowhere", FIGURES, tmp_path / "r.pdf", tmp_path / "d.json")
    assert not (tmp_path / "r.pdf").exists()


def test_empty_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(report.ReportError, match="No results"):
        report.build_data(tmp_path, FIGURES)


def test_malformed_json_names_the_file(tmp_path):
    (tmp_path / "04_training_loop.json").write_text('[{"experiment": "04", ')
    with pytest.raises(report.ReportError, match="04_training_loop.json is not valid JSON"):
        report.build_data(tmp_path, FIGURES)
    (tmp_path / "04_training_loop.json").write_text('{"not": "a list"}')
    with pytest.raises(report.ReportError, match="must be a JSON list"):
        report.build_data(tmp_path, FIGURES)
    (tmp_path / "04_training_loop.json").write_text('[{"experiment": "04", "task": "topic"}]')
    with pytest.raises(report.ReportError, match=r"record 0: missing keys \['strategy', 'metric', 'value'\]"):
        report.build_data(tmp_path, FIGURES)


def test_cli_reports_bad_input_and_exits_2(tmp_path, capsys):
    code = report.main(["--results", str(tmp_path / "nowhere"), "--output", str(tmp_path / "r.pdf"),
                        "--data", str(tmp_path / "d.json")])
    assert code == 2
    assert "error: Results folder" in capsys.readouterr().err
    assert not (tmp_path / "d.json").exists()


def test_committed_data_json_is_current():
    """report/data.json (and so report.pdf) must be rebuilt when results/ or figures/ change."""
    committed = json.loads((REPO_ROOT / "report" / "data.json").read_text())
    assert report.build_data(RESULTS, FIGURES) == committed, (
        "report/data.json is stale: run `make report` (or `.venv/bin/python -m sentence_mtl.reporting.report`)")
