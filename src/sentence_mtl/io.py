"""Files in and out: atomic writes (a reader never sees a half-written result, cache entry or
output), and the checks that make a command's unusable input or output path one clear error."""

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


def make_readable(folder: str | Path) -> None:
    """Let every user read a saved model folder (folders 755, files 644 at least). Temporary
    folders are created 700 and safetensors writes 600: a service running as another user (a
    container's non-root user, say) could not load the model otherwise."""
    for root, dirs, files in os.walk(folder):
        os.chmod(root, os.stat(root).st_mode | 0o755)
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, os.stat(path).st_mode | 0o644)


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


def check_output_path(output: str | Path, suffix: str | None, input_path: str | Path | None = None,
                      flag: str = "--output") -> Path:
    """An output path the command can write, checked before any work is done: the right suffix,
    not a folder, in a writable folder, and never the input file itself."""
    output = Path(output)
    if suffix is not None and output.suffix != suffix:
        raise InputError(f"{flag} must end in {suffix} (got {output}).")
    if output.is_dir():
        raise InputError(f"{flag} {output} is a directory; give a file path" +
                         (f" ending in {suffix}." if suffix else "."))
    if input_path is not None and (output.resolve() == Path(input_path).resolve()
                                   or (output.exists() and os.path.samefile(output, input_path))):
        raise InputError(f"{flag} {output} is the input file; writing it would destroy the input. "
                         "Give another output path.")
    _check_writable_below(output.parent, output)
    return output


def check_output_folder(folder: str | Path, flag: str) -> Path:
    """A folder the command will create or fill, checked before any work is done."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {folder} is a file; give a folder path.")
    _check_writable_below(folder, folder)
    return folder


def _check_writable_below(folder: Path, output: Path) -> None:
    """The nearest existing ancestor of ``folder`` is a folder we may write in (missing folders
    are created on writing)."""
    folder = folder.resolve()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"Cannot write {output}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write {output}: no permission to write in {folder}.")


@contextmanager
def output_file(path: str | Path):
    """:func:`atomic_path` for a command's output: an operating-system error while writing
    (full disk, permissions) is an :class:`InputError` naming the path, and leaves nothing behind."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        raise InputError(f"Cannot write {path}: {e.strerror or e}.") from e


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(cell: str) -> str:
    """A CSV cell that a spreadsheet would run as a formula, made inert with a leading ``'``
    (OWASP's advice against CSV injection); other cells unchanged."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def read_input_texts(path: str | Path) -> list[str]:
    """Texts from a ``.txt`` (one per line) or a ``.csv`` with a ``text`` column.

    Empty files, empty lines/cells and a missing or repeated column are errors, not silently
    skipped: dropping a row would misalign the output with the input. Lines end at ``\\n`` or
    ``\\r\\n`` only: other Unicode line breaks (U+2028, U+0085, form feed) belong to the text,
    so output row i always matches input line i.
    """
    import csv
    import io

    path = Path(path)
    if path.is_dir():
        raise InputError(f"Input {path} is a directory, not a file; give a .txt or .csv file.")
    if not path.is_file():
        raise InputError(f"Input file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv"):
        raise InputError(f"Input file {path} must be a .txt (one text per line) or a .csv with "
                         f"a 'text' column, not {suffix or 'no extension'}.")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # utf-8-sig: Excel's byte-order mark
            content = f.read()  # newline="": no universal newlines, a lone \r stays in its text
    except UnicodeDecodeError as e:
        raise InputError(f"Input file {path} is not UTF-8 text ({e}).") from e
    except OSError as e:
        raise InputError(f"Cannot read input file {path}: {e.strerror or e}.") from e
    if not content.strip():
        raise InputError(f"Input file {path} is empty; give at least one text.")
    if suffix == ".txt":
        lines = [line.removesuffix("\r") for line in content.split("\n")]
        if lines[-1] == "":  # the final line's terminator
            lines.pop()
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                raise InputError(f"{path}, line {i}: empty line. Remove it: every line must be "
                                 "a text, so that output row i matches input line i.")
        return lines
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        return _csv_texts(reader, path)
    except csv.Error as e:  # e.g. a cell longer than the csv module's field limit
        raise InputError(f"{path}, line {reader.line_num + 1}: not readable as CSV ({e}).") from e


def _csv_texts(reader, path: Path) -> list[str]:
    """The cells of the one 'text' column, none of them empty."""
    if "text" not in (reader.fieldnames or []):
        raise InputError(f"{path}: no 'text' column (columns found: {reader.fieldnames}). "
                         "Name the column that holds the sentences 'text'.")
    if reader.fieldnames.count("text") > 1:
        raise InputError(f"{path}: {reader.fieldnames.count('text')} columns are named 'text'; "
                         "rename all but the one that holds the sentences.")
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
