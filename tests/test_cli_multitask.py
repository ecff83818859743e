"""`sentence-mtl train / evaluate / predict` on the tiny model and the hand-written sample."""

import csv
import json

import pytest

from sentence_mtl.cli import main
from sentence_mtl.config import SAMPLE_DATA_DIR
from sentence_mtl.multitask import MultiTaskModel


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_model_dir):
    path = tmp_path_factory.mktemp("mtl") / "model"
    MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic", "sentiment"]).save_pretrained(path)
    return path


def test_train_from_config_file(tmp_path, tiny_model_dir, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": tiny_model_dir, "epochs": 1, "batch_size": 8, "max_seq_length": 32,
                                  "output_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(config), "--data-dir", str(SAMPLE_DATA_DIR),
                 "--save-to", str(tmp_path / "saved")]) == 0
    assert "best mean validation metric" in capsys.readouterr().out
    assert MultiTaskModel.from_pretrained(tmp_path / "saved").tasks == ["topic", "sentiment"]


def test_train_rejects_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochz": 1}))
    assert main(["train", "--config", str(config)]) == 2
    assert "epochz" in capsys.readouterr().err


def test_predict_writes_labels_and_probabilities(tmp_path, saved_model):
    texts = tmp_path / "in.txt"
    texts.write_text("Stocks rallied on Friday.\nWhat a lovely day!\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(saved_model), "--input", str(texts), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["text", "topic", "topic_probability", "sentiment", "sentiment_probability"]
    assert [r["text"] for r in rows] == ["Stocks rallied on Friday.", "What a lovely day!"]
    assert rows[0]["topic"] in ("World", "Sports", "Business", "Sci/Tech")
    assert 0 < float(rows[1]["sentiment_probability"]) <= 1


@pytest.mark.parametrize("content, message", [("", "empty"), ("ok\n\nfine\n", "line 2")])
def test_predict_bad_input_leaves_no_output(tmp_path, saved_model, capsys, content, message):
    texts = tmp_path / "in.txt"
    texts.write_text(content)
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(saved_model), "--input", str(texts), "--output", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["in.txt"]


def test_predict_missing_model_names_the_fix(tmp_path, capsys):
    texts = tmp_path / "in.txt"
    texts.write_text("hello\n")
    assert main(["predict", "--model", str(tmp_path / "none"), "--input", str(texts),
                 "--output", str(tmp_path / "o.csv")]) == 2
    assert "make train" in capsys.readouterr().err


def test_evaluate_on_sample(saved_model, capsys):
    assert main(["evaluate", "--model", str(saved_model), "--task", "sentiment", "--split", "test",
                 "--data-dir", str(SAMPLE_DATA_DIR)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["benchmark_metric"] == "macro_recall" and 0 <= metrics["benchmark_value"] <= 1
    assert main(["evaluate", "--model", str(saved_model), "--task", "airline", "--data-dir", str(SAMPLE_DATA_DIR)]) == 2
