"""The data folder: where it is, and the sha256 manifest every file in it is checked against.

Every problem is a :class:`DataError` that names the file, the line, and the fix; the CLI
reports it in one line with exit status 2.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import REPO_ROOT, SAMPLE_DATA_DIR

MANIFEST_NAME = "checksums.sha256"
REAL_DATA_MANIFEST = REPO_ROOT / "data" / MANIFEST_NAME
HOW_TO_FIX = (
    "Set SENTENCE_MTL_DATA (or pass --data-dir) to the folder that holds ag_news/, "
    "tweeteval_sentiment/, stsb/, scifact_beir/ and twitter_us_airline_sentiment/ "
    "(see data/README.md), or run `make data` to download them."
)
_MANIFEST_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](\S.*)")


class DataError(RuntimeError):
    """A data file is missing, altered or malformed. The message says which and how to fix it."""


def read_text(path: Path, newline: str | None = None) -> str:
    """A data file's text; anything but UTF-8 is a :class:`DataError` (``newline`` as for ``open``)."""
    try:
        with open(path, encoding="utf-8", newline=newline) as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not valid UTF-8 ({e}). Restore the published file.") from e


def read_manifest(path: Path) -> dict[str, str]:
    """``sha256sum`` format: ``<64 hex digits>  <relative path>`` per line (``#``: a comment)."""
    manifest = {}
    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip() or line.startswith("#"):
            continue
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None:
            raise DataError(f"{path}, line {line_no}: expected '<sha256 in 64 hex digits>  <relative path>', "
                            f"found {line[:80]!r}. Restore the manifest with `make data`.")
        manifest[match[2].strip()] = match[1].lower()
    return manifest


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class DataSource:
    """A data folder plus the checksums its files must have (``None``: do not verify)."""

    root: Path
    manifest: dict[str, str] | None = None
    is_sample: bool = False
    _verified: set = field(default_factory=set, repr=False)

    @classmethod
    def resolve(cls, data_dir: str | Path | None = None, profile_name: str | None = None) -> "DataSource":
        """``--data-dir``, then ``SENTENCE_MTL_DATA``, then (smoke profile only) ``data/sample``."""
        data_dir = data_dir or os.environ.get("SENTENCE_MTL_DATA")
        profile_name = profile_name or os.environ.get("SENTENCE_MTL_PROFILE", "standard")
        if data_dir:
            root = Path(data_dir).expanduser().resolve()
            if not root.is_dir():
                raise DataError(f"Data folder {root} does not exist. {HOW_TO_FIX}")
            if root == SAMPLE_DATA_DIR.resolve():
                return cls.sample()
            # a folder made by `make data` carries the checksums of what it downloaded
            own_manifest = root / MANIFEST_NAME
            return cls(root, read_manifest(own_manifest if own_manifest.is_file() else REAL_DATA_MANIFEST))
        if profile_name == "smoke":
            return cls.sample()
        raise DataError(
            f"No data folder configured for the {profile_name!r} profile. {HOW_TO_FIX} "
            "(Only the smoke profile falls back to the hand-written data/sample/.)"
        )

    @classmethod
    def sample(cls) -> "DataSource":
        return cls(SAMPLE_DATA_DIR, read_manifest(SAMPLE_DATA_DIR / MANIFEST_NAME), is_sample=True)

    def file(self, rel: str) -> Path:
        """The path of ``rel``, after checking it exists and has the published checksum."""
        path = self.root / rel
        if not path.is_file():
            raise DataError(f"Missing data file {path}. {HOW_TO_FIX}")
        if self.manifest is not None and rel not in self._verified:
            expected = self.manifest.get(rel)
            if expected is None:
                raise DataError(f"{rel} is not listed in the checksum manifest; add its sha256 "
                                f"to {REAL_DATA_MANIFEST} if it is a new published file.")
            actual = sha256_of(path)
            if actual != expected:
                raise DataError(
                    f"Checksum mismatch for {path}: expected sha256 {expected[:16]}..., got "
                    f"{actual[:16]}.... The file is not the published version (edited, truncated "
                    f"or re-saved). Restore it with `make data`, or point SENTENCE_MTL_DATA at "
                    f"an unmodified copy."
                )
            self._verified.add(rel)
        return path
