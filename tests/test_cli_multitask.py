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


def test_train_with_checkpoint_averaging_records_the_choice(tmp_path, tiny_model_dir, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": tiny_model_dir, "epochs": 2, "batch_size": 8, "max_seq_length": 32,
                                  "average_last": 2, "early_stopping_patience": None,
                                  "output_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(config), "--data-dir", str(SAMPLE_DATA_DIR),
                 "--save-to", str(tmp_path / "saved")]) == 0
    assert "checkpoint average of steps" in capsys.readouterr().out
    summary = json.loads((tmp_path / "saved" / "training_summary.json").read_text())["checkpoint_average"]
    assert len(summary["snapshot_steps"]) == 2 and summary["kept"] in ("average", "best checkpoint")
    assert set(summary["average_validation"]) == {"topic", "sentiment"}


def test_train_rejects_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochz": 1}))
    assert main(["train", "--config", str(config)]) == 2
    assert "epochz" in capsys.readouterr().err


@pytest.mark.parametrize("values, message", [
    ({"freeze": ["encoder", "heads"]}, "training config key 'freeze' ['encoder', 'heads'] freezes every weight"),
    ({"max_seq_length": 129}, "training config key 'max_seq_length' must be at most the model's 128 positions"),
])
def test_train_refuses_a_config_its_model_cannot_run(tmp_path, tiny_model_dir, capsys, values, message):
    """Checked against the built model, before a step is trained (the tiny BERT has 128 positions)."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": tiny_model_dir, "epochs": 1, "batch_size": 8,
                                  "output_dir": str(tmp_path / "run"), **values}))
    assert main(["train", "--config", str(config), "--data-dir", str(SAMPLE_DATA_DIR)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "run").exists()


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


def test_predict_int8_gives_probabilities_close_to_fp32(tmp_path, saved_model):
    texts = tmp_path / "in.txt"
    texts.write_text("Stocks rallied on Friday.\nWhat a lovely day!\n")
    rows = {}
    for name, flags in (("fp32", []), ("int8", ["--int8"])):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", "--model", str(saved_model), "--input", str(texts), "--output", str(out), *flags]) == 0
        rows[name] = list(csv.DictReader(out.open()))
    assert [r["text"] for r in rows["int8"]] == [r["text"] for r in rows["fp32"]]
    for a, b in zip(rows["fp32"], rows["int8"]):
        assert abs(float(a["topic_probability"]) - float(b["topic_probability"])) < 0.05


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


def test_show_predictions_writes_examples_and_the_test_records_in_one_pass(tmp_path, saved_model):
    import importlib.util

    from sentence_mtl.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("show_predictions", REPO_ROOT / "tools" / "show_predictions.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    examples, record = tmp_path / "examples.json", tmp_path / "records.json"
    assert tool.main(["--model", str(saved_model), "--output", str(examples), "--record", str(record),
                      "--data-dir", str(SAMPLE_DATA_DIR)]) == 0
    reports, records = json.loads(examples.read_text()), json.loads(record.read_text())
    assert [r["task"] for r in records] == ["topic", "sentiment"] == [r["task"] for r in reports]
    assert all(r["split"] == "test" and 0 <= r["value"] <= 1 for r in records)
    # the record's accuracy and the examples' accuracy come from the same predictions
    assert [round(r["accuracy"], 6) for r in records] == [round(r["accuracy"], 6) for r in reports]


def test_predict_int8_without_onnxruntime_names_the_extra(tmp_path, saved_model, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if not installed
    texts = tmp_path / "in.txt"
    texts.write_text("Stocks rallied on Friday.\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(saved_model), "--input", str(texts), "--output", str(out), "--int8"]) == 2
    err = capsys.readouterr().err
    assert "onnxruntime is not installed" in err and ".[onnx]" in err and not out.exists()
