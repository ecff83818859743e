"""Committed notebooks show results of the committed code, and nothing else: no warnings,
tracebacks or progress-bar residue in their outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentence_mtl.fingerprint import package_fingerprint

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))


def outputs(notebook: dict) -> list[dict]:
    return [o for cell in notebook["cells"] for o in cell.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_executed_notebook_ran_with_the_current_package(path):
    notebook = json.loads(path.read_text())
    if not outputs(notebook):
        pytest.skip(f"{path.name} is committed unexecuted")
    recorded = notebook["metadata"].get("sentence_mtl", {}).get("package_fingerprint")
    assert recorded == package_fingerprint(), (
        f"{path.name}'s outputs came from other code (fingerprint {recorded}, package now {package_fingerprint()}): "
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


def test_fingerprint_changes_with_any_source_file(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    before = package_fingerprint(package)
    (package / "sub" / "b.py").write_text("y = 3\n")
    assert package_fingerprint(package) != before
