"""Shared fixtures. ``tiny_model_dir``: a 2-layer, 32-wide BERT with MiniLM's tokenizer, so the
training loop can be tested in seconds on CPU. Its weights are random; tests check mechanics
(losses fall, resume is exact, shapes, errors), never quality."""

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sentence_mtl.config import DEFAULT_MODEL
    from sentence_mtl.encoder import resolve_model_path

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
