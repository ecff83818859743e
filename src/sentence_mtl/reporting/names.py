"""Readable names of strategy and configuration ids, kept with the templates that print them."""

from __future__ import annotations

import json

from ..config import REPO_ROOT

NAMES_JSON = REPO_ROOT / "templates" / "names.json"


def names() -> dict[str, str]:
    """``templates/names.json``: id -> words."""
    return json.loads(NAMES_JSON.read_text())
