"""Files in and out: atomic writes (a reader never sees a half-written result, cache entry or
output), and the checks that make a command's unusable input or output path one clear error."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .readable import UNREADABLE_HINT, is_readable


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


LOCK_NAME = ".lock"


@contextmanager
def folder_lock(folder: str | Path, who: str, held: bool = True):
    """One writer per folder: ``folder/.lock`` holds the owner's pid under an exclusive ``flock``,
    which the operating system releases when the owner exits, however it exits (no stale lock
    after a kill). A second writer gets an :class:`InputError` naming the owner's pid. The file
    is removed on release. ``held=False``: no lock (the other processes of a distributed run,
    whose main one holds it)."""
    if not held:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    f = _locked(path, folder, who)
    try:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        path.unlink(missing_ok=True)  # still locked: no one else can hold this file meanwhile
        f.close()


def _locked(path: Path, folder: Path, who: str):
    """The lock file, open and flocked; retried when its owner removed it between our open and
    our lock (we would hold a file no longer in the folder)."""
    import fcntl

    while True:
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise InputError(f"{folder} is in use by another {who} (pid {owner}); wait for it to finish, or "
                             "give another folder.") from None
        try:
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except FileNotFoundError:
            pass
        f.close()


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
    """Every text of an input file (:func:`iter_input_texts`), as a list."""
    return list(iter_input_texts(path))


def iter_input_texts(path: str | Path) -> Iterator[str]:
    """Texts from a ``.txt`` (one per line) or a ``.csv`` with a ``text`` column, read as a
    stream (a file of any size in bounded memory).

    Empty files, empty lines/cells, lines the model cannot read (:mod:`.readable`) and a missing
    or repeated column are errors, not silently skipped: dropping a row would misalign the
    output with the input. Lines end at ``\\n`` or ``\\r\\n`` only: other Unicode line breaks
    (U+2028, U+0085, form feed) belong to the text, so output row i always matches input line i.
    A quoted CSV cell left open (its closing quote missing) is an error naming its line, not a
    cell that swallows the rows after it.
    """
    path = _check_input_file(path)
    try:
        if _is_blank(path):
            raise InputError(f"Input file {path} is empty; give at least one text.")
        if path.suffix.lower() == ".txt":
            yield from _txt_texts(path)
        else:
            yield from _csv_texts(path)
    except UnicodeDecodeError as e:
        raise InputError(f"Input file {path} is not UTF-8 text ({e}).") from e
    except OSError as e:
        raise InputError(f"Cannot read input file {path}: {e.strerror or e}.") from e


def _check_input_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"Input {path} is a directory, not a file; give a .txt or .csv file.")
    if not path.is_file():
        raise InputError(f"Input file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv"):
        raise InputError(f"Input file {path} must be a .txt (one text per line) or a .csv with "
                         f"a 'text' column, not {suffix or 'no extension'}.")
    return path


def _open_text(path: Path, newline: str):
    return open(path, encoding="utf-8-sig", newline=newline)  # utf-8-sig: Excel's byte-order mark


def _is_blank(path: Path) -> bool:
    """Nothing but whitespace (stops at the first other character)."""
    with _open_text(path, "") as f:
        while block := f.read(1 << 20):
            if block.strip():
                return False
    return True


def _check_text(path: Path, line: int, text: str, what: str) -> str:
    if not text.strip():
        raise InputError(f"{path}, line {line}: empty {what}. Remove it: every {what} must be a text, "
                         "so that output row i matches input line i." if what == "line" else
                         f"{path}, line {line}: empty 'text' cell. Fill or remove the row.")
    if not is_readable(text):
        raise InputError(f"{path}, line {line}: the {what} holds nothing the model reads ({UNREADABLE_HINT}). "
                         "Give it letters, digits or punctuation, or remove it.")
    return text


def _txt_texts(path: Path) -> Iterator[str]:
    with _open_text(path, "\n") as f:  # lines end at \n only; a lone \r stays in its text
        for i, line in enumerate(f, start=1):
            yield _check_text(path, i, line.removesuffix("\n").removesuffix("\r"), "line")


def _csv_texts(path: Path) -> Iterator[str]:
    """The cells of the one 'text' column, none of them empty; strict quoting, so that a quote
    left open is an error rather than a cell that runs to the end of the file."""
    import csv

    with _open_text(path, "") as f:
        reader = csv.DictReader(f, strict=True)
        line = 1
        try:
            fieldnames = reader.fieldnames or []
            if "text" not in fieldnames:
                raise InputError(f"{path}: no 'text' column (columns found: {reader.fieldnames}). "
                                 "Name the column that holds the sentences 'text'.")
            if fieldnames.count("text") > 1:
                raise InputError(f"{path}: {fieldnames.count('text')} columns are named 'text'; "
                                 "rename all but the one that holds the sentences.")
            rows = 0
            line = reader.line_num + 1  # quoted cells may span lines: report where the record starts
            for row in reader:
                yield _check_text(path, line, "" if row["text"] is None else row["text"], "'text' cell")
                rows += 1
                line = reader.line_num + 1
        except csv.Error as e:  # a quote left open, a cell over the csv module's field limit
            hint = (" (a quoted cell is not closed: add its closing quote, or double a quote inside "
                    "a quoted cell)" if "quote" in str(e) or "end of data" in str(e) else "")
            raise InputError(f"{path}, line {line}: not readable as CSV ({e}){hint}.") from e
    if not rows:
        raise InputError(f"{path} has a header but no rows; give at least one text.")
