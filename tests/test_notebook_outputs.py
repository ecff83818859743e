"""Committed notebooks show results of the committed code, and nothing else: no warnings,
tracebacks or progress-bar residue in their outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentence_mtl.fingerprint import code_fingerprint, modules_run, notebook_fingerprint

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))


def outputs(notebook: dict) -> list[dict]:
    return [o for cell in notebook["cells"] for o in cell.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_executed_notebook_ran_with_the_current_package(path):
    notebook = json.loads(path.read_text())
    if not outputs(notebook):
        pytest.skip(f"{path.name} is committed unexecuted")
    recorded = notebook["metadata"].get("sentence_mtl", {}).get("code_fingerprint")
    current = notebook_fingerprint(path)
    assert recorded == current, (
        f"{path.name}'s outputs came from other code (fingerprint {recorded}, its code now {current}): "
        "re-execute it with `make notebooks` (stored runs are reused) and commit the result")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_outputs_hold_no_warnings_tracebacks_or_progress_bars(path):
    for output in outputs(json.loads(path.read_text())):
        assert output["output_type"] != "error", f"{path.name} holds a traceback"
        assert output.get("name") != "stderr", f"{path.name} holds stderr output: {''.join(output['text'])[:200]}"
        data = output.get("data", {})
        assert "application/vnd.jupyter.widget-view+json" not in data, f"{path.name} holds a progress-bar widget"
        text = "".join(output.get("text", "")) + "".join(data.get("text/plain", ""))
        assert "Warning" not in text and "it/s]" not in text, f"{path.name} shows a warning or progress bar: {text[:200]}"


def _package(tmp_path):
    package = tmp_path / "sentence_mtl"
    for folder in ("experiments", "reporting"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("x = 1\n")
    (package / "unused.py").write_text("z = 1\n")
    (package / "experiments" / "study.py").write_text("from ..core import x\n")
    (package / "reporting" / "plots.py").write_text("y = 2\n")
    return package


def test_fingerprint_follows_imports_and_leaves_presentation_out(tmp_path):
    package = _package(tmp_path)
    cells = ["from sentence_mtl.experiments.study import x\nfrom sentence_mtl.reporting import plots\n%matplotlib inline"]
    assert modules_run(cells, package) == ["sentence_mtl", "sentence_mtl.core", "sentence_mtl.experiments",
                                           "sentence_mtl.experiments.study"]
    before = code_fingerprint(cells, package)
    (package / "reporting" / "plots.py").write_text("y = 3\n")  # a figure's style: nothing re-executes
    (package / "unused.py").write_text("z = 2\n")
    assert code_fingerprint(cells, package) == before
    (package / "core.py").write_text("x = 2\n")  # imported through experiments.study
    assert code_fingerprint(cells, package) != before
    assert code_fingerprint([cells[0] + "\nprint(x)"], package) != code_fingerprint(cells, package)
