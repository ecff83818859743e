"""``TrainConfig``: everything a training run depends on, checked when it is made.

A config usually comes from a hand-written JSON file, so every key is checked for its type and
range up front: a typo such as ``"epochs": "two"`` or ``"batch_size": 0`` is one clear error
naming the key, the value and what is expected, not a traceback minutes into a run.
"""

from __future__ import annotations

import difflib
import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .config import DEFAULT_MODEL
from .io import InputError

SAMPLING_SCHEMES = ("round_robin", "proportional", "temperature", "annealed")
LOSS_WEIGHTINGS = ("equal", "static", "uncertainty")
MIXED_PRECISION = ("no", "fp16", "bf16")


class ConfigError(InputError):
    """A training config is unusable; the message names the key, the value and what is expected."""


@dataclass
class TrainConfig:
    """Everything a run depends on; saved beside its results and checkpoints."""

    model: str = DEFAULT_MODEL
    tasks: tuple[str, ...] = ("topic", "sentiment")
    head_hidden_dim: int | None = None
    dropout: float = 0.1
    normalize: bool = False  # heads read the un-normalised mean-pooled vector
    max_seq_length: int = 128
    batch_size: int = 32
    epochs: int = 3
    steps_per_epoch: int | None = None  # None: every source's batches once, on average
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    layer_decay: float | None = None  # lr(layer l) = encoder_lr * layer_decay ** (L - 1 - l)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    sampling: str = "proportional"  # round_robin | proportional | temperature | annealed
    temperature_alpha: float = 0.5  # p(source) ~ N ** alpha for "temperature"
    loss_weighting: str = "equal"  # equal | static | uncertainty
    static_weights: dict[str, float] = field(default_factory=dict)
    eval_every: int | None = None  # steps between validations; None: once per epoch
    early_stopping_patience: int | None = 2
    # average the weights of the last N validation points; kept when its validation metric is higher
    average_last: int | None = field(default=None, metadata={"keyed_when_set": True})
    freeze: tuple[str, ...] = ()  # MultiTaskModel parts to freeze, e.g. ("embeddings",)
    bucket_size: int = 50  # batches per length-sorting pool
    seed: int = 0
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (accelerate)
    log_every: int = 10
    output_dir: str = "runs/train"
    # data: which training examples (per class, None = all) and how many validation items per task
    train_per_class: int | None = None
    val_max_per_task: int | None = 1000
    data_seed: int = 0

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            setattr(self, f.name, _checked(f.name, getattr(self, f.name), hints[f.name]))
        for key, rule in _RANGES.items():
            value = getattr(self, key)
            if value is not None and not rule[0](value):
                raise ConfigError(f"training config key {key!r} must be {rule[1]}, got {value!r}.")
        for key, choices in (("sampling", SAMPLING_SCHEMES), ("loss_weighting", LOSS_WEIGHTINGS),
                             ("mixed_precision", MIXED_PRECISION)):
            if getattr(self, key) not in choices:
                raise ConfigError(f"training config key {key!r} must be one of {list(choices)}, "
                                  f"got {getattr(self, key)!r}.")
        self._check_tasks()

    def _check_tasks(self) -> None:
        from .data import TASKS

        if not self.tasks:
            raise ConfigError(f"training config key 'tasks' must name at least one task of {sorted(TASKS)}.")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"training config key 'tasks' must list distinct tasks of {sorted(TASKS)}, "
                              f"got {list(self.tasks)!r}.")
        stray = sorted(set(self.static_weights) - set(self.tasks))
        if stray:
            raise ConfigError(f"training config key 'static_weights' names {stray}, which are not in "
                              f"'tasks' {list(self.tasks)}.")
        if any(w < 0 for w in self.static_weights.values()):
            raise ConfigError(f"training config key 'static_weights' must hold weights >= 0, "
                              f"got {self.static_weights!r}.")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        if not isinstance(values, dict):
            raise ConfigError(f"A training config is a JSON object of TrainConfig fields, "
                              f"not {_describe(values)}.")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            hints = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
            guess = "; ".join(f"{k!r}: did you mean {m[0]!r}?" for k, m in hints.items() if m)
            raise ConfigError(f"Unknown training config key(s) {unknown}" + (f" ({guess})" if guess else "")
                              + f"; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ConfigError(f"Training config {path} {what}; give a JSON file of TrainConfig fields.")
        try:
            values = json.loads(path.read_bytes().decode("utf-8-sig"), parse_constant=_reject_constant)
        except UnicodeDecodeError as e:
            raise ConfigError(f"Training config {path} is not UTF-8 text ({e.reason}).") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"Training config {path} is not valid JSON: {e.msg} at line {e.lineno}, "
                              f"column {e.colno}.") from None
        except ValueError as e:  # NaN / Infinity
            raise ConfigError(f"Training config {path}: {e}") from None
        except RecursionError:
            raise ConfigError(f"Training config {path} is nested too deeply to read; a config is one JSON "
                              "object of TrainConfig fields.") from None
        try:
            return cls.from_dict(values)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def check_fits(self, model) -> None:
        """What this config asks of a built (and frozen) ``MultiTaskModel``: positions for its
        max_seq_length, and something left to train after ``freeze``."""
        positions = getattr(model.encoder.backbone.config, "max_position_embeddings", None)
        if positions is not None and self.max_seq_length > positions:
            raise ConfigError(f"training config key 'max_seq_length' must be at most the model's {positions} "
                              f"positions, got {self.max_seq_length}.")
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError(f"training config key 'freeze' {list(self.freeze)} freezes every weight, "
                              "leaving nothing to train; freeze fewer parts (heads are usually trained).")

    def to_dict(self) -> dict:
        return asdict(self)

    def changes_from(self, saved) -> list[str]:
        """How this config differs from a saved one (a checkpoint's), as "key: there, now" lines.
        ``output_dir`` is left out: where a run lives is not what it computes, so a moved run resumes."""
        if not isinstance(saved, dict):
            return ["no config saved"]
        return [f"{k}: {saved.get(k)!r} there, {v!r} now" for k, v in self.to_dict().items()
                if k != "output_dir" and saved.get(k) != v]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows; write a finite number.")


# key -> (test, what the value must be); None always passes where the type allows it. Upper
# bounds too: a seed past 2**32 - 1 is refused by numpy, a count past 2**31 - 1 by torch, and a
# learning rate over 1 sends the weights to infinity within a step.
MAX_COUNT = 2**31 - 1
MAX_SEED = 2**32 - 1
_RANGES = {
    **{key: (lambda v: 1 <= v <= MAX_COUNT, f"an integer from 1 to {MAX_COUNT}") for key in (
        "batch_size", "epochs", "max_seq_length", "steps_per_epoch", "head_hidden_dim", "eval_every",
        "early_stopping_patience", "average_last", "bucket_size", "log_every", "train_per_class", "val_max_per_task")},
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
    "data_seed": (lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
    **{key: (lambda v: 0 <= v <= 1, "a number from 0 to 1") for key in ("encoder_lr", "head_lr")},
    **{key: (lambda v: v >= 0, "a number >= 0") for key in ("weight_decay", "temperature_alpha")},
    "dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "warmup_ratio": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "max_grad_norm": (lambda v: v > 0, "a number > 0"),
    "layer_decay": (lambda v: v > 0, "a number > 0 (or null for none)"),
}


def _describe(value) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list",
             tuple: "a list", dict: "an object", type(None): "null"}
    return f"{value!r} ({names.get(type(value), type(value).__name__)})"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked(key: str, value, hint):
    """``value`` converted to the field's type (int -> float, list -> tuple), or a ConfigError."""
    args = typing.get_args(hint)
    nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if nullable:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    converted, expected = _converted(value, hint)
    if expected:
        raise ConfigError(f"training config key {key!r} must be {expected}{' or null' if nullable else ''}, "
                          f"got {_describe(value)}.")
    return converted


def _converted(value, hint) -> tuple[object, str | None]:
    """(value as the type ``hint``, None), or (None, what was expected)."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return (value, None) if isinstance(value, bool) else (None, "true or false")
    if hint is int:
        return (value, None) if isinstance(value, int) and not isinstance(value, bool) else (None, "an integer")
    if hint is float:
        return (float(value), None) if _is_number(value) else (None, "a finite number")
    if hint is str:
        return (value, None) if isinstance(value, str) and value else (None, "a non-empty string")
    if origin is tuple:
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
            return tuple(value), None
        return None, "a list of non-empty strings"
    if origin is dict:
        if isinstance(value, dict) and all(isinstance(k, str) and _is_number(v) for k, v in value.items()):
            return {k: float(v) for k, v in value.items()}, None
        return None, "an object mapping names to finite numbers"
    raise TypeError(f"no check for type {hint}")
