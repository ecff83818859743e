"""Shared fixtures. ``tiny_model_dir``: a 2-layer, 32-wide BERT with MiniLM's tokenizer, so the
training loop can be tested in seconds on CPU. Its weights are random; tests check mechanics
(losses fall, resume is exact, shapes, errors), never quality."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from serve_support import build_tiny_bert

    return str(build_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """A multi-task model (topic, sentiment heads) on the tiny BERT, saved as `make train` saves."""
    from sentence_mtl.multitask import MultiTaskModel

    path = tmp_path_factory.mktemp("multitask") / "model"
    MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic", "sentiment"]).save_pretrained(path)
    return path


@pytest.fixture
def texts_txt(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("Stocks rallied.\nWhat a day!\n")
    return path


def pytest_configure(config):
    """Tests load the packaged backbone; the hub is never asked (the library leaves this to its
    callers: the Makefile and the CLI set it too)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
