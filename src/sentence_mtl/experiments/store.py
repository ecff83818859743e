"""The run store: every study run's records, kept under a key made of everything the run reads.

A run (one strategy, task, size and seed; one multi-task configuration; one retrieval seed) is
keyed by its content: its settings (dataclasses included), the few-shot sample, the data
files' checksums, the backbone's weights hash, the records' shared fields and
``STUDY_VERSION``. Asking the store for a run that it holds returns the stored records and
trains nothing; a run it lacks is computed once and written atomically. So re-executing a
notebook with nothing changed recomputes nothing, and a killed run of a whole grid continues
where it stopped.

The records live in ``results/store/`` (``default_root``); they are small and committed.

Modes (``SENTENCE_MTL_STORE``):

* ``reuse`` (default): stored runs are reused.
* ``recompute``: a reproduction. Every run is computed again, except runs written after
  ``SENTENCE_MTL_STORE_SINCE`` (a Unix time: the start of this reproduction), so that a killed
  reproduction resumes instead of starting over.

Spot checks (``SENTENCE_MTL_STORE_SPOT_CHECK``, a fraction): that share of reused runs, drawn at
random, is recomputed and compared with the stored records in a canonical form (JSON, keys
sorted), all but the measured costs (seconds, memory) and the notebook's description of the
grid; any difference raises ``StoreMismatch``. Determinism is a claim of this repository, and
this is how it is checked.

Integrity: each record file carries the sha256 of its own content (``sha256``). Every read checks
it, checks that the file's ``key`` is the key asked for (a file copied under another run's name
is caught), and that its records are a non-empty list of finite values. A file that fails is
never used: ``DamagedRecord`` names it, says why and how to fix it, and the run stops.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..io import _jsonable, write_json

# Bump when what a run computes changes (training, sampling, scoring), so that no stored record
# made by the old code is ever reused.
STUDY_VERSION = 1

MODES = ("reuse", "recompute")
# Measured costs vary from run to run; everything else in a record must reproduce exactly.
COST_KEYS = frozenset({"train_seconds", "peak_memory_mb", "encode_seconds", "seconds",
                       "training_memory_mb", "activation_mb", "wall_seconds", "cache_seconds"})
# Fields of a record that describe where and when it ran rather than what it measured.
CONTEXT_KEYS = frozenset({"config", "run_id", "promoted"})


# Field metadata for a setting added to a dataclass after runs were stored: at its default it is
# left out of the key, so the runs that do not use it keep their keys (and are not recomputed).
KEYED_WHEN_SET = "keyed_when_set"


class StoreMismatch(AssertionError):
    """A recomputed run differs from its stored records: the study is not deterministic."""


class NotStored(LookupError):
    """A run the store lacks, asked of a store that reads only (``compute_missing`` False)."""


class DamagedRecord(RuntimeError):
    """A record file that must not be used: unreadable, edited, misfiled or holding no values."""


def fingerprint(value: Any) -> Any:
    """A JSON-able stand-in for ``value`` that changes whenever its content changes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__class__": type(value).__name__,
                **{f.name: fingerprint(getattr(value, f.name)) for f in dataclasses.fields(value)
                   if not (f.metadata.get(KEYED_WHEN_SET) and getattr(value, f.name) == f.default)}}
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"__array__": str(data.dtype), "shape": list(data.shape),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(value, dict):
        return {str(k): fingerprint(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot fingerprint a {type(value).__name__}; pass its content (texts, arrays, "
                    "settings) instead")


def run_key(parts: dict) -> str:
    """sha256 of the canonical JSON of ``parts`` and ``STUDY_VERSION``."""
    canonical = json.dumps({"study_version": STUDY_VERSION, **fingerprint(parts)}, sort_keys=True,
                           separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def content_digest(texts: list[str], *label_arrays) -> str:
    """sha256 of texts and label arrays: what a run reads from a split."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass") + b"\0")
    for labels in label_arrays:
        h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def backbone_digest(model_name: str) -> str:
    """sha256 over the files of the backbone's folder (weights, tokenizer, settings)."""
    from ..encoder import resolve_model_path

    folder = Path(resolve_model_path(model_name))
    if not folder.is_dir():
        return model_name  # a hub name not on disk: nothing to hash, the name stands for it
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def compact(value: Any, limit: int = 2000) -> Any:
    """``value`` (a fingerprint) for the record file, with any part longer than ``limit``
    characters of JSON replaced by its sha256: the key already covers it, the file stays small."""
    text = json.dumps(value, sort_keys=True, allow_nan=False)
    if len(text) <= limit:
        return value
    if isinstance(value, dict):
        return {k: compact(v, limit) for k, v in value.items()}
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "json_chars": len(text)}


def measured(record: dict) -> str:
    """What a run measured, in canonical form: the record as sorted JSON without its costs
    (timings, memory) and context (the grid's description, run ids, registry decisions)."""
    kept = {k: v for k, v in record.items() if k not in COST_KEYS | CONTEXT_KEYS
            and not k.endswith(("_seconds", "_s"))}
    canonical = json.loads(json.dumps(kept, default=_jsonable, allow_nan=False))
    return json.dumps(_without_unset(canonical), sort_keys=True, allow_nan=False)


def _without_unset(value):
    """Nested settings left at None dropped: a setting added after a run was stored is echoed as
    None by a fresh run and absent from the stored record, and both mean it was not set."""
    if isinstance(value, dict):
        return {k: _without_unset(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_unset(v) for v in value]
    return value


def content_hash(entry: dict) -> str:
    """sha256 of a record file's content (everything but the hash itself), as canonical JSON."""
    body = {k: v for k, v in entry.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     allow_nan=False).encode()).hexdigest()


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def read_entry(path: Path, key: str | None = None) -> dict | None:
    """The record file at ``path``, checked (hash, key, non-empty finite records); None when absent.

    Raises ``DamagedRecord`` naming the file, what is wrong and the fix."""
    if not path.exists():
        return None
    fix = (f"restore it (git checkout -- {path}) or delete it so that the run is computed again")
    try:
        entry = json.loads(path.read_text(), parse_constant=_reject_constant)
    except (OSError, ValueError) as error:
        raise DamagedRecord(f"{path}: unreadable record file ({error}); {fix}") from None
    records = entry.get("records") if isinstance(entry, dict) else None
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise DamagedRecord(f"{path}: no records in the file; {fix}")
    if "sha256" not in entry:
        raise DamagedRecord(f"{path}: carries no sha256; if you trust it, seal it (python tools/seal_store.py), "
                            f"else {fix}")
    if entry["sha256"] != content_hash(entry):
        raise DamagedRecord(f"{path}: content does not match its sha256 (edited after it was written); {fix}")
    if key is not None and entry.get("key") != key:
        raise DamagedRecord(f"{path}: holds run {str(entry.get('key'))[:12]}, not {key[:12]} (a file copied under "
                            f"another run's name); {fix}")
    if key is not None and path.stem != key:
        raise DamagedRecord(f"{path}: file name is not its key; {fix}")
    return entry


def seal(path: Path) -> bool:
    """Add the content hash to a record file written without one (its key must match its name);
    True when the file changed."""
    entry = json.loads(path.read_text(), parse_constant=_reject_constant)
    if "sha256" in entry:
        return False
    if entry.get("key") != path.stem or not entry.get("records"):
        raise DamagedRecord(f"{path}: cannot seal a file whose key is not its name or that holds no records")
    write_json(path, {**entry, "sha256": content_hash(entry)})
    return True


def default_root() -> Path:
    """``SENTENCE_MTL_STORE_DIR``, else ``results/store/`` of the profile's output folder: committed
    for ``standard`` (a fresh clone re-executes the notebooks warm), under ``runs/<profile>/`` else."""
    from ..config import get_profile, results_dir

    if os.environ.get("SENTENCE_MTL_STORE_DIR"):
        return Path(os.environ["SENTENCE_MTL_STORE_DIR"])
    return results_dir(get_profile()) / "store"


def first_difference(fresh: list[dict], stored: list[dict]) -> str | None:
    """Where two runs' records differ in what they measured (``measured``), or None."""
    if len(fresh) != len(stored):
        return f"{len(fresh)} records against {len(stored)} stored"
    for i, (a, b) in enumerate(zip(fresh, stored)):
        a, b = json.loads(measured(a)), json.loads(measured(b))
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                return f"record {i}, field {name!r}: {str(a.get(name))[:60]} recomputed, {str(b.get(name))[:60]} stored"
    return None


def largest_value_difference(fresh: list[dict], stored: list[dict]) -> float | None:
    """The largest absolute difference between the ``value`` (the metric) of a recomputed run's
    records and its stored ones, record by record; None when they do not line up (another count,
    or another metric at the same place): what ``make verify`` reports beside ``first_difference``."""
    if len(fresh) != len(stored) or any(a.get("metric") != b.get("metric") for a, b in zip(fresh, stored)):
        return None
    pairs = [(a.get("value"), b.get("value")) for a, b in zip(fresh, stored)]
    if any(not isinstance(x, (int, float)) or not isinstance(y, (int, float)) for x, y in pairs):
        return None if any(x != y for x, y in pairs) else 0.0
    return max((abs(x - y) for x, y in pairs), default=0.0)


class RunStore:
    """Records of finished runs under ``root/<experiment>/<key>.json``."""

    def __init__(self, root: str | Path | None = None, mode: str | None = None,
                 since: float | None = None, spot_check: float | None = None, seed: int = 0):
        env = os.environ
        self.root = Path(root) if root is not None else default_root()
        self.mode = mode or env.get("SENTENCE_MTL_STORE", "reuse")
        if self.mode not in MODES:
            raise ValueError(f"SENTENCE_MTL_STORE must be one of {MODES}, not {self.mode!r}")
        self.since = since if since is not None else float(env.get("SENTENCE_MTL_STORE_SINCE", "inf"))
        self.spot_check = spot_check if spot_check is not None else float(
            env.get("SENTENCE_MTL_STORE_SPOT_CHECK", "0"))
        if not 0 <= self.spot_check <= 1:
            raise ValueError(f"the spot-check share must lie in [0, 1], not {self.spot_check}")
        self._draw = random.Random(seed)
        # ``make verify`` (tools/verify.py): the keys to recompute and where to log each comparison
        listed = env.get("SENTENCE_MTL_STORE_VERIFY")
        self.verify_keys = set(json.loads(Path(listed).read_text())) if listed else set()
        self.verify_log = Path(env["SENTENCE_MTL_STORE_VERIFY_LOG"]) if listed else None
        self.counts = {"reused": 0, "computed": 0, "checked": 0}
        self.compute_missing = True  # False: a missing run raises NotStored instead of training

    def path(self, experiment: str, key: str) -> Path:
        return self.root / experiment / f"{key}.json"

    def _stored(self, path: Path, key: str) -> dict | None:
        entry = read_entry(path, key)
        if entry is None:
            return None
        if self.mode == "recompute" and entry.get("written_at", 0) < self.since:
            return None
        return entry

    @staticmethod
    def key(recorder, parts: dict) -> str:
        """The key of the run ``parts`` describes, for ``recorder``'s experiment, profile and data
        kind; the notebook's ``config`` (a description of the whole grid) is not part of it."""
        return run_key({"parts": parts, "shared": {k: v for k, v in recorder.common.items() if k != "config"}})

    def holds(self, recorder, parts: dict) -> bool:
        """Whether the store has the run's records (a run someone else trained the same way)."""
        key = self.key(recorder, parts)
        return self._stored(self.path(recorder.experiment, key), key) is not None

    def run(self, recorder, parts: dict, compute: Callable[[Any], Any], check: bool = True) -> list[dict]:
        """The records of the run ``parts`` describes, added to ``recorder``.

        ``compute(child)`` trains and scores the run, adding its records to ``child``, a fresh
        recorder with ``recorder``'s shared fields; it runs only when the store lacks the run.
        ``check=False``: a measurement (a timing), never spot-checked, since it cannot repeat exactly.
        """
        # parts carry everything this run reads, so a new strategy in the grid recomputes nothing
        # else. Reused records get today's config.
        key = self.key(recorder, parts)
        path = self.path(recorder.experiment, key)
        entry = self._stored(path, key)
        listed = key in self.verify_keys
        if entry is not None and check and (listed or self.spot_check and self._draw.random() < self.spot_check):
            start = time.perf_counter()
            fresh = self._compute(recorder, compute)
            self.counts["checked"] += 1
            difference = first_difference(fresh, entry["records"])
            if listed:  # ``make verify``: every listed run is reported, identical or not
                self._log_check(recorder.experiment, key, difference, time.perf_counter() - start,
                                largest_value_difference(fresh, entry["records"]))
            elif difference:
                raise StoreMismatch(f"run {key[:12]} of {recorder.experiment} gave different records "
                                    f"when recomputed ({path}): {difference}")
        if entry is None and not self.compute_missing:
            raise NotStored(f"run {key[:12]} of {recorder.experiment} is not in the store ({path})")
        if entry is not None:
            records = [{**r, **recorder.common} for r in entry["records"]]
            self.counts["reused"] += 1
        else:
            records = self._compute(recorder, compute)
            entry = {"key": key, "study_version": STUDY_VERSION, "written_at": time.time(),
                     "parts": compact(fingerprint(parts)), "records": records}
            write_json(path, {**entry, "sha256": content_hash(entry)})
            self.counts["computed"] += 1
        recorder.records.extend(records)
        return records

    def _log_check(self, experiment: str, key: str, difference: str | None, seconds: float,
                   value_difference: float | None) -> None:
        with self.verify_log.open("a") as log:
            log.write(json.dumps({"experiment": experiment, "key": key, "identical": difference is None,
                                  "difference": difference, "largest_value_difference": value_difference,
                                  "values_identical": value_difference == 0.0,
                                  "seconds": round(seconds, 1)}) + "\n")

    @staticmethod
    def _compute(recorder, compute) -> list[dict]:
        child = type(recorder).__new__(type(recorder))
        child.__dict__.update(recorder.__dict__, records=[])
        compute(child)
        # through JSON, so a computed run and a reused one are the same plain values
        return json.loads(json.dumps(child.records, default=_jsonable, allow_nan=False))

    def summary(self) -> str:
        c = self.counts
        return f"run store: {c['reused']} reused, {c['computed']} computed, {c['checked']} spot-checked"

