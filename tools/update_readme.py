"""Rewrite the README's generated blocks: the answers and results from results/*.json, run times from
results/reproduce_timing.json, the service soak from results/serve_soak.json (see sentence_mtl.reporting)."""

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.io import atomic_path
from sentence_mtl.reporting.answers import ANSWERS_END, ANSWERS_START, answers_block
from sentence_mtl.reporting.benchmark_tables import CONTAINER_END, CONTAINER_START, container_block
from sentence_mtl.reporting.readme import (RUNTIME_END, RUNTIME_START, SOAK_END, SOAK_START, replace_block, results_block,
                                 runtime_block, serve_soak_block)

readme = REPO_ROOT / "README.md"
text = replace_block(readme.read_text(), answers_block(), ANSWERS_START, ANSWERS_END)
text = replace_block(text, results_block())
text = replace_block(text, runtime_block(), RUNTIME_START, RUNTIME_END)
text = replace_block(text, serve_soak_block(), SOAK_START, SOAK_END)
text = replace_block(text, container_block(REPO_ROOT / "results"), CONTAINER_START, CONTAINER_END)
with atomic_path(readme) as tmp:
    tmp.write_text(text)
print("README answers, results, run-time, soak and container blocks updated")
