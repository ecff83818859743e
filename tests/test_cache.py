"""Tests for sentence_mtl.cache with a tiny fake encoder: hits, misses, corrupt entries."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from sentence_mtl.cache import cached_encode, model_digest, texts_digest


class FakeEncoder:
    """Deterministic 'embeddings' derived from the text and the weights; counts encode calls."""

    def __init__(self, weight: float = 1.0, pooling: str = "mean"):
        self.weights = {"layer.weight": torch.full((2, 3), weight), "layer.bias": torch.zeros(2)}
        self.pooling = pooling
        self.calls = 0

    def settings(self) -> dict:
        return {"name": "fake", "pooling": self.pooling, "normalize": True}

    def state_dict(self) -> dict:
        return self.weights

    def encode(self, texts, batch_size=32, show_progress=False) -> np.ndarray:
        self.calls += 1
        scale = float(self.weights["layer.weight"].sum())
        rows = []
        for text in texts:
            seed = int(hashlib.md5(text.encode()).hexdigest()[:8], 16)
            rows.append(np.random.default_rng(seed).standard_normal(4) * scale)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 4)


TEXTS = ["first sentence", "second one", "a third"]


def entries(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_no_temp_files(root):
    leftovers = [p for p in root.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert not leftovers, leftovers


def test_second_call_served_from_disk(tmp_path):
    encoder = FakeEncoder()
    first = cached_encode(encoder, TEXTS, root=tmp_path, show_progress=False)
    assert encoder.calls == 1
    assert len(entries(tmp_path)) == 1
    second = cached_encode(encoder, TEXTS, root=tmp_path, show_progress=False)
    assert encoder.calls == 1
    np.testing.assert_array_equal(first, second)
    # a new encoder object with the same weights and settings also hits the cache
    other = FakeEncoder()
    np.testing.assert_array_equal(cached_encode(other, TEXTS, root=tmp_path), first)
    assert other.calls == 0
    assert_no_temp_files(tmp_path)


def test_namespace_is_a_subfolder(tmp_path):
    cached_encode(FakeEncoder(), TEXTS, root=tmp_path, namespace="stsb")
    (entry,) = entries(tmp_path)
    assert entry.parent == tmp_path / "stsb"
    assert entry.suffix == ".npy"


@pytest.mark.parametrize("texts", [
    TEXTS[:2],                                   # fewer texts
    TEXTS[::-1],                                 # same texts, other order
    TEXTS[:2] + ["a third!"],                    # one text edited
    ["first sentencesecond one", "a third"],     # same concatenation, other split
])
def test_different_texts_are_a_different_entry(tmp_path, texts):
    encoder = FakeEncoder()
    cached_encode(encoder, TEXTS, root=tmp_path)
    out = cached_encode(encoder, texts, root=tmp_path)
    assert encoder.calls == 2
    assert len(entries(tmp_path)) == 2
    np.testing.assert_array_equal(out, FakeEncoder().encode(texts))


def test_different_weights_are_a_different_entry(tmp_path):
    base = FakeEncoder(weight=1.0)
    tuned = FakeEncoder(weight=1.5)
    a = cached_encode(base, TEXTS, root=tmp_path)
    b = cached_encode(tuned, TEXTS, root=tmp_path)
    assert tuned.calls == 1
    assert len(entries(tmp_path)) == 2
    assert not np.allclose(a, b)
    # a change in one weight element, in place, is also a different model
    base.weights["layer.bias"][0] = 1e-3
    cached_encode(base, TEXTS, root=tmp_path)
    assert base.calls == 2


def test_different_settings_are_a_different_entry(tmp_path):
    cached_encode(FakeEncoder(pooling="mean"), TEXTS, root=tmp_path)
    cls_encoder = FakeEncoder(pooling="cls")
    cached_encode(cls_encoder, TEXTS, root=tmp_path)
    assert cls_encoder.calls == 1
    assert len(entries(tmp_path)) == 2


def test_digests_are_stable_and_sensitive():
    assert texts_digest(TEXTS) == texts_digest(list(TEXTS))
    assert texts_digest(["ab", "c"]) != texts_digest(["a", "bc"])
    assert model_digest(FakeEncoder()) == model_digest(FakeEncoder())
    assert model_digest(FakeEncoder(1.0)) != model_digest(FakeEncoder(2.0))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "header_only"])
def test_corrupt_entry_is_recomputed(tmp_path, damage):
    encoder = FakeEncoder()
    expected = cached_encode(encoder, TEXTS, root=tmp_path)
    (path,) = entries(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) - 8], "garbage": b"not a numpy file at all",
                      "empty": b"", "header_only": data[:6]}[damage])
    out = cached_encode(encoder, TEXTS, root=tmp_path)
    assert encoder.calls == 2
    np.testing.assert_array_equal(out, expected)
    # the entry was rewritten whole: the next call is a hit again
    np.testing.assert_array_equal(np.load(path), expected)
    cached_encode(encoder, TEXTS, root=tmp_path)
    assert encoder.calls == 2
    assert_no_temp_files(tmp_path)


def test_failed_encode_leaves_no_entry(tmp_path):
    class Broken(FakeEncoder):
        def encode(self, texts, batch_size=32, show_progress=False):
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cached_encode(Broken(), TEXTS, root=tmp_path)
    assert entries(tmp_path) == []


@pytest.mark.parametrize("batch_size", [0, -1])
def test_layer_states_refuse_a_batch_size_below_one(tmp_path, batch_size):
    """A negative batch size would skip the loop and cache uninitialised rows under a valid key."""
    from sentence_mtl.cache import cached_layer_states

    with pytest.raises(ValueError, match="positive integer"):
        cached_layer_states(FakeEncoder(), TEXTS, layer=1, batch_size=batch_size, root=tmp_path)
    assert not entries(tmp_path)
