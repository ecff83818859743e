"""The run store's checks through a real notebook execution (notebook 02, smoke profile, a fresh
store): an untouched store passes a full spot check; a record edited by hand, or another run's
file copied under a run's key, stops the notebook with an error naming the file."""

import json
import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_multitask_heads.ipynb"


def execute(store: Path, **env) -> None:
    """Run every cell of the notebook in a kernel whose environment names ``store``."""
    saved = dict(os.environ)
    os.environ.update({"SENTENCE_MTL_PROFILE": "smoke", "SENTENCE_MTL_STORE_DIR": str(store),
                       "TQDM_DISABLE": "1", **env})
    try:
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("store")
    execute(store)
    assert list(store.rglob("*.json")), "the notebook stored no run"
    return store


def copy_of(store: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    target = tmp_path / "store"
    shutil.copytree(store, target)
    return target, sorted(target.rglob("*.json"))


def test_an_untouched_store_passes_a_full_spot_check(filled_store, tmp_path):
    store, _ = copy_of(filled_store, tmp_path)
    execute(store, SENTENCE_MTL_STORE_SPOT_CHECK="1.0")


def test_a_hand_edited_value_stops_the_notebook_naming_the_file(filled_store, tmp_path):
    store, (path, *_) = copy_of(filled_store, tmp_path)
    path.write_text(path.read_text().replace('"value": 0.', '"value": 1.0', 1))
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="DamagedRecord") as caught:
        execute(store)
    assert path.name in str(caught.value) and "sha256" in str(caught.value)


def test_another_runs_file_under_a_key_stops_the_notebook(filled_store, tmp_path):
    """An intact, sealed record file of another run, copied under this run's name."""
    from sentence_mtl.experiments.store import content_hash

    store, (path, *_) = copy_of(filled_store, tmp_path)
    entry = json.loads(path.read_text())
    entry["key"] = "f" * 64
    entry["sha256"] = content_hash(entry)
    path.write_text(json.dumps(entry))
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="copied under another run") as caught:
        execute(store)
    assert path.name in str(caught.value)
