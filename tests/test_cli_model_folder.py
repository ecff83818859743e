"""Damaged model folders, data folders and records, and Ctrl-C, through the real command.

A truncated or missing weights file, malformed JSON or a wrong type in a model's own config
ends with exit status 2 and one line that names the folder, the file and the fix; so do a
malformed checksum manifest, non-UTF-8 data and an unreadable results file. Ctrl-C exits with
status 130 and leaves no output. Every subprocess that loads torch costs seconds, so the full
list of corruptions runs in-process through ``main`` and a sample of it through the command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_support import assert_one_error_line, cli
from sentence_mtl.cli import main
from sentence_mtl.config import SAMPLE_DATA_DIR
from sentence_mtl.multitask import MultiTaskModel


def edit_json(path: Path, change) -> None:
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def truncate(path: Path, size: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:size])


# (id, the file named in the message, how to damage a copy of the folder)
CORRUPTIONS = [
    ("truncated heads", "heads.safetensors", lambda m: truncate(m / "heads.safetensors")),
    ("missing heads", "heads.safetensors", lambda m: (m / "heads.safetensors").unlink()),
    ("truncated encoder weights", "model.safetensors", lambda m: truncate(m / "encoder" / "model.safetensors", 5000)),
    ("missing encoder weights", "model.safetensors", lambda m: (m / "encoder" / "model.safetensors").unlink()),
    ("malformed multitask_config", "multitask_config.json", lambda m: (m / "multitask_config.json").write_text("{")),
    ("multitask_config is a list", "multitask_config.json", lambda m: (m / "multitask_config.json").write_text("[]")),
    ("heads not a list", "multitask_config.json",
     lambda m: edit_json(m / "multitask_config.json", lambda c: c.update(heads="topic"))),
    ("hidden_dim a string", "hidden_dim",
     lambda m: edit_json(m / "multitask_config.json", lambda c: c["heads"][0].update(hidden_dim="64"))),
    ("one label name", "label_names",
     lambda m: edit_json(m / "multitask_config.json", lambda c: c["heads"][0].update(label_names=["World"]))),
    ("missing sentence_encoder.json", "sentence_encoder.json",
     lambda m: (m / "encoder" / "sentence_encoder.json").unlink()),
    ("malformed sentence_encoder.json", "sentence_encoder.json",
     lambda m: (m / "encoder" / "sentence_encoder.json").write_text("{")),
    ("max_seq_length a string", "max_seq_length",
     lambda m: edit_json(m / "encoder" / "sentence_encoder.json", lambda c: c.update(max_seq_length="128"))),
    ("projection_dim a string", "projection_dim",
     lambda m: edit_json(m / "encoder" / "sentence_encoder.json", lambda c: c.update(projection_dim="16"))),
    ("unknown pooling", "pooling",
     lambda m: edit_json(m / "encoder" / "sentence_encoder.json", lambda c: c.update(pooling=["mean"]))),
    ("malformed config.json", "config.json", lambda m: (m / "encoder" / "config.json").write_text("{")),
    ("hidden_size a string", "config.json",
     lambda m: edit_json(m / "encoder" / "config.json", lambda c: c.update(num_hidden_layers="two"))),
    ("malformed tokenizer.json", "tokenizer", lambda m: (m / "encoder" / "tokenizer.json").write_text("{")),
    ("no tokenizer files", "tokenizer", lambda m: remove_tokenizer_files(m / "encoder")),
    ("NaN in a head", "heads.safetensors", lambda m: poison(m / "heads.safetensors", float("nan"))),
    ("infinity in the encoder", "model.safetensors", lambda m: poison(m / "encoder" / "model.safetensors", float("inf"))),
    ("one bit flipped in a head (still finite)", "heads.safetensors: does not match its checksum",
     lambda m: flip_bit(m / "heads.safetensors")),
    ("one bit flipped in the encoder", "model.safetensors: does not match its checksum",
     lambda m: flip_bit(m / "encoder" / "model.safetensors")),
    ("a label name repeated", "distinct label names",
     lambda m: edit_json(m / "multitask_config.json",
                         lambda c: c["heads"][0]["label_names"].__setitem__(1, c["heads"][0]["label_names"][0]))),
    ("two heads of one task", "heads[1].task",
     lambda m: edit_json(m / "multitask_config.json", lambda c: c["heads"][1].update(task=c["heads"][0]["task"]))),
]


def remove_tokenizer_files(folder: Path) -> None:
    """What transformers would silently replace with a vocabulary of five special tokens."""
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)


def poison(weights: Path, value: float) -> None:
    """One weight of the file set to ``value``: every output would be NaN."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    name = next(k for k, t in tensors.items() if t.is_floating_point())
    tensors[name].view(-1)[0] = value
    save_file(tensors, str(weights))


def flip_bit(weights: Path) -> None:
    """The lowest bit of the first weight's lowest byte: the value stays finite, the file loads."""
    data = bytearray(weights.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # safetensors: header length, header, tensors
    data[start] ^= 1
    weights.write_bytes(bytes(data))


def test_a_folder_saved_without_checksums_loads(model_dir, tmp_path):
    copy = damaged_copy(model_dir, tmp_path, lambda m: [(m / "checksums.json").unlink(),
                                                         (m / "encoder" / "checksums.json").unlink()])
    assert MultiTaskModel.from_pretrained(copy).tasks == ["topic", "sentiment"]


def damaged_copy(model_dir: Path, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "damaged"
    shutil.copytree(model_dir, copy)
    damage(copy)
    return copy


@pytest.mark.parametrize("name, named, damage", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_every_damaged_model_folder_is_one_clear_error(model_dir, tmp_path, texts_txt, capsys, name, named, damage):
    copy = damaged_copy(model_dir, tmp_path, damage)
    out = tmp_path / "out.csv"
    code = main(["predict", "--model", str(copy), "--input", str(texts_txt), "--output", str(out)])
    line = assert_one_error_line(code, capsys.readouterr().err, str(copy), named, "make train")
    assert not out.exists()
    assert len(line) < 500


@pytest.mark.parametrize("name, named, damage", [CORRUPTIONS[i] for i in (0, 3, 7)],
                         ids=[CORRUPTIONS[i][0] for i in (0, 3, 7)])
def test_predict_with_a_damaged_model_folder(model_dir, tmp_path, texts_txt, name, named, damage):
    copy = damaged_copy(model_dir, tmp_path, damage)
    out = tmp_path / "out.csv"
    result = cli("predict", "--model", copy, "--input", texts_txt, "--output", out)
    assert_one_error_line(result.returncode, result.stderr, str(copy), named, "make train")
    assert not out.exists()


def test_evaluate_with_a_damaged_model_folder(model_dir, tmp_path):
    copy = damaged_copy(model_dir, tmp_path, CORRUPTIONS[2][2])
    result = cli("evaluate", "--model", copy, "--task", "sentiment", "--data-dir", SAMPLE_DATA_DIR)
    assert_one_error_line(result.returncode, result.stderr, str(copy), "model.safetensors", "SafetensorError")


def test_embed_with_a_damaged_model_folder(tiny_model_dir, tmp_path, texts_txt):
    copy = tmp_path / "encoder"
    shutil.copytree(tiny_model_dir, copy)
    truncate(copy / "model.safetensors", 5000)
    out = tmp_path / "out.npy"
    result = cli("embed", "--model", copy, "--input", texts_txt, "--output", out)
    assert_one_error_line(result.returncode, result.stderr, str(copy), "model.safetensors")
    assert not out.exists()


@pytest.mark.parametrize("damage, named", [(remove_tokenizer_files, "tokenizer"),
                                           (lambda m: poison(m / "model.safetensors", float("nan")), "NaN")])
def test_embed_refuses_an_encoder_that_would_give_meaningless_vectors(tiny_model_dir, tmp_path, texts_txt, damage,
                                                                      named):
    """Both used to load and answer with exit status 0: the same vector for every text, or NaN."""
    copy = tmp_path / "encoder"
    shutil.copytree(tiny_model_dir, copy)
    damage(copy)
    out = tmp_path / "out.npy"
    result = cli("embed", "--model", copy, "--input", texts_txt, "--output", out)
    assert_one_error_line(result.returncode, result.stderr, str(copy), named)
    assert not out.exists()


def test_embed_with_an_unknown_model_name(tmp_path, texts_txt, capsys):
    code = main(["embed", "--model", "no-such-org/no-such-model", "--input", str(texts_txt),
                 "--output", str(tmp_path / "out.npy")])
    assert_one_error_line(code, capsys.readouterr().err, "'no-such-org/no-such-model'", "installed model")


def test_a_missing_model_folder_is_still_a_file_not_found_error(tmp_path):
    from sentence_mtl.io import InputError

    with pytest.raises(FileNotFoundError, match="make train") as caught:
        MultiTaskModel.from_pretrained(tmp_path / "nothing")
    assert isinstance(caught.value, InputError)


# --------------------------------------------------------------------------- data folders and records


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """The sample data in a folder of its own, checked against its own manifest."""
    copy = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA_DIR, copy)
    return copy


def test_malformed_checksum_manifest(model_dir, data_copy):
    manifest = data_copy / "checksums.sha256"
    lines = manifest.read_text().split("\n")
    lines[2] = "not-a-digest"
    manifest.write_text("\n".join(lines))
    result = cli("evaluate", "--model", model_dir, "--task", "sentiment", "--data-dir", data_copy)
    assert_one_error_line(result.returncode, result.stderr, f"{manifest}, line 3", "make data")


def test_data_file_that_is_not_utf8(model_dir, data_copy):
    import hashlib

    bad = data_copy / "ag_news" / "test.csv"
    bad.write_bytes(bad.read_bytes().replace(b"\n", b" caf\xe9\n", 1))  # Latin-1, listed with its checksum
    manifest = data_copy / "checksums.sha256"
    manifest.write_text("\n".join(
        f"{hashlib.sha256(bad.read_bytes()).hexdigest()}  ag_news/test.csv" if line.endswith("ag_news/test.csv")
        else line for line in manifest.read_text().split("\n")))
    result = cli("evaluate", "--model", model_dir, "--task", "topic", "--data-dir", data_copy)
    assert_one_error_line(result.returncode, result.stderr, str(bad), "not valid UTF-8")


@pytest.mark.parametrize("content, message", [("{", "not a results file"), ('{"a": 1}', "JSON dict"),
                                              ('[{"task": "topic"}]', "record 0 lacks")])
def test_unreadable_record_file_is_reported_before_scoring(model_dir, tmp_path, content, message):
    record = tmp_path / "results.json"
    record.write_text(content)
    result = cli("evaluate", "--model", model_dir, "--task", "sentiment", "--data-dir", SAMPLE_DATA_DIR,
                 "--record", record)
    assert_one_error_line(result.returncode, result.stderr, str(record), message)
    assert record.read_text() == content


def test_malformed_training_summary(model_dir, tmp_path, capsys, monkeypatch):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "training_summary.json").write_text("{")

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before the training summary was checked")

    monkeypatch.setattr("sentence_mtl.training.evaluate", no_scoring)  # refused before the work
    code = main(["evaluate", "--model", str(copy), "--task", "sentiment", "--data-dir", str(SAMPLE_DATA_DIR),
                 "--record", str(tmp_path / "results.json")])
    assert_one_error_line(code, capsys.readouterr().err, "training_summary.json", "not valid JSON")
    assert not (tmp_path / "results.json").exists()


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_exits_130_and_leaves_no_output(tiny_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"sentence number {i} of a long input\n" for i in range(20000)))
    out = tmp_path / "out" / "emb.npy"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([sys.executable, "-m", "sentence_mtl.cli", "embed", "--model", tiny_model_dir,
                                "--input", str(src), "--output", str(out), "--batch-size", "1"],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env,
                               # as from a terminal: a shell's background job (nohup, `&`) starts
                               # with SIGINT ignored, and Python then installs no Ctrl-C handler
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stderr, deadline = b"", time.monotonic() + 120
    while b"embed" not in stderr and time.monotonic() < deadline:  # the progress bar: encoding has begun
        chunk = os.read(process.stderr.fileno(), 4096)
        if not chunk:
            break
        stderr += chunk
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    stderr = (stderr + rest).decode()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].strip().endswith("interrupted")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    assert {p.name for p in tmp_path.iterdir()} <= {"in.txt", "out"}
