"""Copy the markdown cells of a notebook source (notebooks/src/*.py) into its executed .ipynb,
keeping the outputs: for prose fixes that need no re-execution. Refuses if any code cell differs.
Usage: python tools/nbmarkdown.py notebooks/src/04_x.py notebooks/04_x.ipynb"""

import sys

import nbformat
from nbbuild import build

fresh = build(open(sys.argv[1]).read())
executed = nbformat.read(sys.argv[2], as_version=4)
if [(c.cell_type, c.source if c.cell_type == "code" else "") for c in fresh.cells] != \
        [(c.cell_type, c.source if c.cell_type == "code" else "") for c in executed.cells]:
    sys.exit("code cells differ: re-execute the notebook instead")
for new, old in zip(fresh.cells, executed.cells):
    if new.cell_type == "markdown":
        old.source = new.source
nbformat.write(executed, sys.argv[2])
print(f"markdown updated in {sys.argv[2]}")
