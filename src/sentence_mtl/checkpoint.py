"""Resumable training checkpoints: safe formats, checksums, atomic writes, recovery.

A checkpoint is a folder. Tensors go to ``state.safetensors``; everything else (counters, the
scheduler, the random-number generators, the config) to ``state.json``; nothing is pickled,
so loading a checkpoint can never run code. ``manifest.json``, written last, holds the sha256
of every file: a truncated, bit-flipped or half-written checkpoint is refused with a clear
error instead of resuming into NaN, and a folder without one is incomplete.

A folder is replaced by two renames (target -> ``.target.old``, ``.target.tmp`` -> target). A
process killed between them leaves no target; ``recover_dir`` puts back the newest copy that
verifies, so the next start resumes instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from .io import InputError

MANIFEST = "manifest.json"
TENSORS = "state.safetensors"
STATE = "state.json"
FORMAT = 1
_FIX = "Delete it or pass --restart to start over."

log = logging.getLogger(__name__)


class CheckpointError(InputError):
    """A checkpoint is corrupt, incomplete or from another run; the message names the folder."""


# --------------------------------------------------------------------------- checksums


def write_manifest(directory: Path) -> None:
    """sha256 of every file under ``directory``; written last, so it also marks completeness."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p != directory / MANIFEST)
    digests = {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    (directory / MANIFEST).write_text(json.dumps({"format": FORMAT, "sha256": digests}, indent=1) + "\n")


def _manifest(directory: Path) -> dict[str, str]:
    path = directory / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {directory} has no {MANIFEST}: it is incomplete or was written by an "
                              f"older version. {_FIX}")
    try:
        manifest = json.loads(path.read_bytes())
        digests = manifest["sha256"]
        ok = manifest["format"] == FORMAT and isinstance(digests, dict) and all(
            isinstance(d, str) and _inside(directory, name) for name, d in digests.items())
    except (ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise CheckpointError(f"Checkpoint {directory}: {MANIFEST} is unreadable. {_FIX}")
    return digests


def _inside(directory: Path, name: str) -> bool:
    return isinstance(name, str) and (directory / name).resolve().is_relative_to(directory.resolve())


def _verified_bytes(directory: Path, name: str, digest: str) -> bytes:
    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {directory} is incomplete: {name} is missing. {_FIX}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(f"Checkpoint {directory} is corrupt: {name} does not match its checksum. {_FIX}")
    return data


def verify_dir(directory: str | Path) -> None:
    """Raise CheckpointError unless every file the manifest lists is there, unchanged."""
    directory = Path(directory)
    for name, digest in _manifest(directory).items():
        _verified_bytes(directory, name, digest)


# --------------------------------------------------------------------------- atomic folders


def _aside(target: Path) -> tuple[Path, Path]:
    return target.with_name(f".{target.name}.tmp"), target.with_name(f".{target.name}.old")


def atomic_dir(target: str | Path, write) -> None:
    """``write(tmp)`` fills a fresh folder; with its manifest added, it replaces ``target``."""
    target = Path(target)
    tmp, old = _aside(target)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    write_manifest(tmp)
    if target.exists():
        if old.exists():  # left by an earlier interrupted swap; target is newer
            shutil.rmtree(old)
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


def recover_dir(target: str | Path) -> bool:
    """Finish a replacement of ``target`` that a killed process left between its two renames.

    The new copy (complete) is then in ``.target.tmp`` and the previous one in ``.target.old``;
    the newest that verifies becomes ``target`` again. True if one was put back; False if there
    is nothing to recover (a first save killed while writing leaves only an incomplete ``.tmp``).
    A ``.old`` copy means a checkpoint existed: when no copy verifies, starting over silently
    would throw its steps away, so that is a :class:`CheckpointError` naming the copy.
    """
    target = Path(target)
    if target.exists():
        return False
    failures = {}
    for candidate in _aside(target):
        if not candidate.is_dir():
            continue
        try:
            verify_dir(candidate)
        except CheckpointError as e:
            failures[candidate] = e
            continue
        candidate.rename(target)
        for leftover in _aside(target):
            if leftover.exists():
                shutil.rmtree(leftover)
        log.warning("recovered %s from %s, left by a run killed while saving", target, candidate.name)
        return True
    old = _aside(target)[1]
    if old in failures:
        raise CheckpointError(f"{target} is missing, and the copy a run killed while saving left ({old}) fails "
                              f"its checks: {failures[old]} {_FIX}") from failures[old]
    return False


# --------------------------------------------------------------------------- state, without pickle


def save_state(directory: Path, state: dict) -> None:
    """Nested dicts, lists and tuples of tensors, arrays and plain values: tensors to safetensors,
    the rest to JSON, tagged so that types (tuples, int keys, inf) come back exactly."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors)
    save_file(tensors, str(directory / TENSORS))
    (directory / STATE).write_text(json.dumps(tree, allow_nan=False))


def load_state(directory: str | Path) -> dict:
    """The state ``save_state`` wrote, after checking every file of the folder against its manifest."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"Checkpoint {directory} is not a folder. {_FIX}")
    digests = _manifest(directory)
    missing = [name for name in (TENSORS, STATE) if name not in digests]
    if missing:
        raise CheckpointError(f"Checkpoint {directory} is incomplete: its manifest lacks {missing}. {_FIX}")
    data = {name: _verified_bytes(directory, name, digest) for name, digest in digests.items()}
    try:
        return _decode(json.loads(data[STATE]), load(data[TENSORS]))
    except (SafetensorError, ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"Checkpoint {directory} is unreadable ({type(e).__name__}: {e}). {_FIX}") from e


def _encode(value, tensors: dict, path: str = ""):
    """JSON for ``value``; each tensor goes to ``tensors`` under its path (``objective/<param>``)."""
    if isinstance(value, torch.Tensor):
        name = path if path and path not in tensors else f"{path}#{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        items = [_encode(v, tensors, f"{path}/{i}".lstrip("/")) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        pairs = [(k, _encode(v, tensors, f"{path}/{k}".lstrip("/"))) for k, v in value.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return dict(pairs)
        return {"__items__": [[_encode(k, tensors), v] for k, v in pairs]}
    raise TypeError(f"a checkpoint cannot hold a {type(value).__name__}")


def _decode(value, tensors: dict):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__ndarray__" in value:
        return np.array(value["__ndarray__"], dtype=value["dtype"])
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
    return {k: _decode(v, tensors) for k, v in value.items()}


# the trainer's counters in a checkpoint: (test, what the value must be)
_TRAINER_STATE = {
    **{key: (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0")
       for key in ("epoch", "step_in_epoch", "global_step", "evals_without_improvement")},
    "best_step": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                  "an integer >= 0 or null"),
    "best_metric": (lambda v: isinstance(v, float) and not math.isnan(v), "a number"),
    "stopped_early": (lambda v: isinstance(v, bool), "true or false"),
}


def check_trainer_state(state: dict, directory: Path) -> None:
    """A checkpoint's counters checked like a config (its checksum proves integrity, not sense)."""
    for key, (ok, expected) in _TRAINER_STATE.items():
        if not ok(state[key]):
            raise CheckpointError(f"Checkpoint {directory}: trainer.{key} must be {expected}, got "
                                  f"{json.dumps(state[key])[:60]}. Delete it or pass --restart to start over.")


# --------------------------------------------------------------------------- random generators


def rng_states() -> dict:
    """Every generator a run may draw from, so that a resumed run is bit-identical."""
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(legacy=False),
              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
