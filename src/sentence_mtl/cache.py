"""Content-addressed cache of embeddings and frozen-layer outputs: compute them once, ever.

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


def _read_or_compute(path: Path, read, compute, write):
    """``read(path)`` when a readable entry exists; else ``compute()``, written atomically."""
    if path.is_file():
        try:
            return read(path)
        except (ValueError, OSError, EOFError, KeyError):  # unreadable entry: recompute and overwrite it
            pass
    value = compute()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f, value)
    return value


def _key(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def cached_encode(encoder, texts: list[str], batch_size: int = 64, namespace: str = "embeddings",
                  show_progress: bool = True, root: Path | None = None) -> np.ndarray:
    """``encoder.encode(texts)``, read from disk when this model has encoded these texts before."""
    path = (root or cache_dir()) / namespace / f"{_key(model_digest(encoder), texts_digest(texts))}.npy"
    return _read_or_compute(path, np.load,
                            lambda: encoder.encode(texts, batch_size=batch_size, show_progress=show_progress),
                            np.save)


# --------------------------------------------------------------------------- frozen-layer outputs


class LayerStates:
    """Token states of many texts at one layer, stored ragged (no padding) as one float32 array.

    ``batch(idx)`` pads just the rows asked for, so a top-k training step starts from here
    instead of re-running the frozen lower layers.
    """

    def __init__(self, states: np.ndarray, lengths: np.ndarray):
        self.states = states
        self.lengths = lengths.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden [B, T, H], attention_mask [B, T]) for rows ``idx``, padded to their longest."""
        idx = np.asarray(idx)
        longest = int(self.lengths[idx].max())
        hidden = np.zeros((len(idx), longest, self.states.shape[1]), dtype=np.float32)
        mask = np.zeros((len(idx), longest), dtype=np.int64)
        for row, i in enumerate(idx):
            n = self.lengths[i]
            hidden[row, :n] = self.states[self.offsets[i]:self.offsets[i] + n]
            mask[row, :n] = 1
        return torch.from_numpy(hidden), torch.from_numpy(mask)


@torch.inference_mode()
def _compute_layer_states(encoder, texts: list[str], layer: int, batch_size: int,
                          show_progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm

    from .encoder import check_batch_size

    check_batch_size(batch_size)

    was_training = encoder.training
    encoder.eval()
    features = encoder.tokenizer(list(texts), truncation=True, max_length=encoder.max_seq_length)
    lengths = np.array([len(ids) for ids in features["input_ids"]], dtype=np.int64)
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc=f"cache layer {layer}",
                      disable=not show_progress, leave=False):
        rows = range(start, min(start + batch_size, len(texts)))
        batch = encoder.tokenizer.pad({k: [features[k][i] for i in rows] for k in features}, return_tensors="pt")
        hidden = encoder.hidden_states_at(layer, batch["input_ids"], batch["attention_mask"],
                                          batch.get("token_type_ids"))
        chunks += [hidden[j, :lengths[i]].float().numpy() for j, i in enumerate(rows)]
    encoder.train(was_training)
    return np.concatenate(chunks), lengths


def cached_layer_states(encoder, texts: list[str], layer: int, batch_size: int = 64,
                        show_progress: bool = True, root: Path | None = None) -> LayerStates:
    """Token states of ``texts`` after ``layer`` frozen blocks, computed once per (model, layer,
    max length, texts). The key covers every weight, so states of a changed model are never reused."""
    key = _key(model_digest(encoder), f"layer={layer}", texts_digest(texts))
    path = (root or cache_dir()) / "layer_states" / f"{key}.npz"

    def read(path):
        with np.load(path) as saved:
            return saved["states"], saved["lengths"]

    states, lengths = _read_or_compute(
        path, read, lambda: _compute_layer_states(encoder, texts, layer, batch_size, show_progress),
        lambda f, value: np.savez(f, states=value[0], lengths=value[1]))
    return LayerStates(states, lengths)
