"""Content-addressed cache of embeddings: encode a text set with a model once, ever.

The key hashes the model's weights, its pooling/projection settings and the texts, so a
fine-tuned model or a changed text list can never be served stale vectors. Entries are
written atomically; a half-written file from a killed run is never read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .config import cache_dir
from .io import atomic_path


def texts_digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def model_digest(encoder) -> str:
    """Hash of every parameter and buffer plus the settings (about 0.2 s for MiniLM)."""
    h = hashlib.sha256(repr(sorted(encoder.settings().items())).encode())
    for name, tensor in encoder.state_dict().items():
        if isinstance(tensor, torch.Tensor) and not tensor.is_quantized:
            h.update(name.encode())
            h.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cached_encode(encoder, texts: list[str], batch_size: int = 64, namespace: str = "embeddings",
                  show_progress: bool = True, root: Path | None = None) -> np.ndarray:
    """``encoder.encode(texts)``, read from disk when this model has encoded these texts before."""
    key = hashlib.sha256(f"{model_digest(encoder)}:{texts_digest(texts)}".encode()).hexdigest()[:32]
    path = (root or cache_dir()) / namespace / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (ValueError, OSError, EOFError):  # unreadable entry: recompute and overwrite it
            pass
    embeddings = encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, embeddings)
    return embeddings
