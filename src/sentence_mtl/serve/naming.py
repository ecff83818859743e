"""How answers name a model: by its folder relative to the server's working directory (or, outside
it, by the folder's name) and its version, never by an absolute path: a client has no business
learning the server's file layout."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory if it lies below it, else its last part.
    A name that is not a local path (a hub name such as ``org/model``) is returned as it is."""
    text = str(path)
    candidate = Path(text).expanduser()
    if not (candidate.is_absolute() or candidate.exists()):
        return text
    resolved = candidate.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return resolved.name or text


def model_version(directory: Path) -> str:
    """The ``finished`` time of the folder's ``training_summary.json`` if it has one, else the first
    12 hex digits of a SHA-256 over every file (relative path and bytes), sorted by path."""
    summary = directory / "training_summary.json"
    if summary.is_file():
        try:
            finished = json.loads(summary.read_text()).get("finished")
        except (ValueError, OSError):
            finished = None
        if finished:
            return str(finished)
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:12]
