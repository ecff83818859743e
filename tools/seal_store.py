"""Adds its content hash to every record file of the run store that was written without one
(``store.seal``): a record file is trusted from then on only while its content matches.

Usage: ``python tools/seal_store.py [STORE_DIR]`` (default: ``results/store``).
"""

import sys
from pathlib import Path

from sentence_mtl.experiments.store import seal

root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/store")
if not root.is_dir():
    sys.exit(f"error: no run store at {root}; pass the store folder (e.g. results/store)")
changed = sum(seal(path) for path in sorted(root.glob("*/*.json")))
print(f"{changed} record files sealed under {root}")
