"""The README's results block must be what tools/update_readme.py generates from results/."""

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.tables import END, START, replace_block, results_block


def test_readme_results_block_is_current():
    readme = (REPO_ROOT / "README.md").read_text()
    assert START in readme and END in readme
    assert replace_block(readme, results_block()) == readme, (
        "README results block is stale: run `.venv/bin/python tools/update_readme.py`")


def test_results_block_reports_missing_results(tmp_path):
    assert "No results yet" in results_block(tmp_path)
