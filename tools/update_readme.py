"""Rewrite the README's results block from results/*.json (see sentence_mtl.tables)."""

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.tables import replace_block, results_block

readme = REPO_ROOT / "README.md"
readme.write_text(replace_block(readme.read_text(), results_block()))
print("README results block updated")
