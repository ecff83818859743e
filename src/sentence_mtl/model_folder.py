"""Reading a saved model folder: a missing, truncated or hand-edited file is one clear error.

A corrupt folder can fail anywhere underneath (safetensors, transformers, huggingface_hub's
config validation, torch's state-dict checks), each library with its own exception types and
often several lines of text. :func:`reading` turns whatever fails while one part of the folder
is read into one line naming that part; :class:`ModelLoadError` adds the folder and the fix. It
is an :class:`~sentence_mtl.io.InputError`, so the CLI reports it in one line with exit status 2.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from .io import InputError


class ModelLoadError(InputError):
    """A model folder (or name) that cannot be loaded. ``detail``: which part failed, and why."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail or message


class NotAModelFolder(ModelLoadError, FileNotFoundError):
    """The folder (or its config file) is not there at all."""


class UnreadablePart(Exception):
    """One part of a folder could not be read; the message is one line: the part, then why."""


class BadField(ValueError):
    """A field of one of our own JSON files has the wrong type or value."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception as one short line: library messages often span several."""
    text = " ".join(str(error).split()).rstrip(".")
    if not isinstance(error, BadField):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


@contextmanager
def reading(part: str):
    """Report any failure inside the block as ``part`` being unreadable."""
    try:
        yield
    except UnreadablePart:
        raise
    except Exception as e:  # whatever a library raises for a corrupt file; chained, not lost
        raise UnreadablePart(f"{part}: {one_line(e)}") from e


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object (a missing file is reported by :func:`reading`)."""
    if not path.is_file():
        raise BadField("missing")
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise BadField(f"expected a JSON object, found {type(value).__name__}")
    return value


def check(ok: bool, field: str, expected: str, value) -> None:
    if not ok:
        raise BadField(f"{field!r} must be {expected}, found {json.dumps(value)[:60]}")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(value, field: str, allow_none: bool = False) -> None:
    check((allow_none and value is None) or (is_int(value) and value > 0), field,
          "a positive integer" + (" or null" if allow_none else ""), value)


# A folder without one of these loads anyway: transformers then builds a tokenizer of a handful of
# special tokens, every text becomes [UNK]s, and every answer is the same.
TOKENIZER_FILE_NAMES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                        "tokenizer.model")


def check_tokenizer_files(directory: Path) -> None:
    """A local model folder must carry its vocabulary (a hub name is checked by the hub)."""
    if directory.is_dir() and not any((directory / name).is_file() for name in TOKENIZER_FILE_NAMES):
        raise BadField(f"missing: none of {', '.join(TOKENIZER_FILE_NAMES)} is in the folder")


def check_finite(named_tensors) -> None:
    """Weights holding NaN or infinity load without complaint and turn every output into NaN."""
    import torch

    for name, tensor in named_tensors:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise BadField(f"the weight {name!r} holds NaN or infinite values")


# A bit flipped in a weight file can leave every value finite and every answer wrong (one class
# for every text), which no check of the values can see. Saving records the sha256 of each weight
# file; loading compares. A folder saved without this file loads unchecked.
CHECKSUMS_NAME = "checksums.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(directory: Path) -> None:
    """The sha256 of every weight file directly in ``directory``, to ``checksums.json``."""
    files = sorted(p for p in Path(directory).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    (Path(directory) / CHECKSUMS_NAME).write_text(
        json.dumps({"sha256": {p.name: _sha256(p) for p in files}}, indent=1) + "\n")


def verify_checksums(directory: Path) -> None:
    """Every weight file listed in ``checksums.json`` is there and matches (:class:`UnreadablePart`
    naming the file otherwise); no such file: nothing to check (a folder saved without one)."""
    directory = Path(directory)
    if not (directory / CHECKSUMS_NAME).is_file():
        return
    with reading(CHECKSUMS_NAME):
        digests = read_json_object(directory / CHECKSUMS_NAME).get("sha256")
        check(isinstance(digests, dict) and all(isinstance(k, str) and "/" not in k and isinstance(v, str)
                                                for k, v in digests.items()),
              "sha256", "an object of file names and hex digests", digests)
    for name, digest in digests.items():
        with reading(name):
            if not (directory / name).is_file():
                raise BadField("missing (listed in checksums.json)")
            if _sha256(directory / name) != digest:
                raise BadField("does not match its checksum in checksums.json: the file is damaged")
