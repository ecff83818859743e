"""A fingerprint of this package's source: what an executed notebook records it ran with.

``tools/reproduce.py`` writes it into each notebook's metadata; ``tests/test_notebooks.py``
fails when a committed notebook's outputs came from other code than the package's current
source, so a result shown in a notebook is one the current code produces.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def package_fingerprint(root: Path = PACKAGE) -> str:
    """sha256 over every ``.py`` file of the package (relative path and bytes), first 16 hex digits."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
