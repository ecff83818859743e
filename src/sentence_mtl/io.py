"""Atomic file writes: a reader never sees a half-written result, cache entry or output."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and figures are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, default=_jsonable) + "\n")


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class InputError(ValueError):
    """A user-supplied input file is unusable; the message says what is wrong and how to fix it."""


def read_input_texts(path: str | Path) -> list[str]:
    """Texts from a ``.txt`` (one per line) or a ``.csv`` with a ``text`` column.

    Empty files, empty lines/cells and a missing column are errors, not silently skipped:
    dropping a row would misalign the output with the input.
    """
    import csv
    import io

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Input file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv"):
        raise InputError(f"Input file {path} must be a .txt (one text per line) or a .csv with "
                         f"a 'text' column, not {suffix or 'no extension'}.")
    try:
        content = path.read_text(encoding="utf-8-sig")  # tolerate Excel's byte-order mark
    except UnicodeDecodeError as e:
        raise InputError(f"Input file {path} is not UTF-8 text ({e}).") from e
    if not content.strip():
        raise InputError(f"Input file {path} is empty; give at least one text.")
    if suffix == ".txt":
        lines = content.splitlines()
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                raise InputError(f"{path}, line {i}: empty line. Remove it: every line must be "
                                 "a text, so that output row i matches input line i.")
        return lines
    reader = csv.DictReader(io.StringIO(content, newline=""))
    if "text" not in (reader.fieldnames or []):
        raise InputError(f"{path}: no 'text' column (columns found: {reader.fieldnames}). "
                         "Name the column that holds the sentences 'text'.")
    texts = []
    line = reader.line_num + 1  # quoted cells may span lines: report where the record starts
    for row in reader:
        text = row["text"]
        if text is None or not text.strip():
            raise InputError(f"{path}, line {line}: empty 'text' cell. Fill or remove the row.")
        texts.append(text)
        line = reader.line_num + 1
    if not texts:
        raise InputError(f"{path} has a header but no rows; give at least one text.")
    return texts
