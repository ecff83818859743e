"""Notebooks as researchers use them: each executed notebook agrees with its jupytext text twin,
and `make lab` serves them so that JupyterLab renders their cells in a real (headless) browser."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from serve_support import free_port

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))


def _cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_every_notebook_has_a_text_twin_and_none_is_orphaned():
    twins = {path.stem for path in (REPO / "notebooks" / "src").glob("*.py")}
    assert NOTEBOOKS, "no notebooks found"
    assert {path.stem for path in NOTEBOOKS} == twins


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_agrees_with_its_text_twin(notebook):
    import jupytext

    twin = jupytext.read(REPO / "notebooks" / "src" / f"{notebook.stem}.py", fmt="py:percent")
    assert _cells(twin) == _cells(nbformat.read(notebook, as_version=4)), (
        f"{notebook.name} and notebooks/src/{notebook.stem}.py differ: run `make sync-notebooks` "
        "(a code change also needs the notebook re-executed)")


def test_jupytext_config_pairs_each_notebook_with_its_twin():
    from jupytext.config import load_jupytext_config
    from jupytext.paired_paths import paired_paths

    config = load_jupytext_config(str(REPO / "notebooks"))
    notebook = str(NOTEBOOKS[0])
    paths = {Path(path) for path, _ in paired_paths(notebook, "ipynb", config.default_formats(notebook))}
    assert paths == {NOTEBOOKS[0], REPO / "notebooks" / "src" / f"{NOTEBOOKS[0].stem}.py"}


def _wait_for(url: str, seconds: float, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"`make lab` exited with {server.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer {url} within {seconds:.0f} s")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium); "
                    ".ci/run installs it")
def test_make_lab_renders_the_cells_of_notebook_01():
    port = free_port()
    flags = f"--no-browser --port {port} --ServerApp.ip=127.0.0.1 --ServerApp.token= --ServerApp.password="
    server = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_FLAGS={flags}"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/status", 90, server)
        notebook = NOTEBOOKS[0]
        dom = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=30000",
             "--dump-dom", f"http://127.0.0.1:{port}/lab/tree/{notebook.name}"],
            capture_output=True, text=True, timeout=180).stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    rendered = re.findall(r'class="(?:[^"]* )?jp-Cell[ "]', dom)  # the cell itself, not its parts
    expected = len(nbformat.read(notebook, as_version=4).cells)
    assert len(rendered) == expected, f"JupyterLab rendered {len(rendered)} of {expected} cells"
    assert re.search(r"<h1[^>]*>(<span[^>]*></span>)?01 · Sentence embeddings", dom), "the title cell was not rendered as a heading"
    assert "jp-RenderedImage" in dom, "no figure output was rendered"
