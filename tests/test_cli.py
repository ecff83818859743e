"""Tests for the ``sentence-mtl embed`` command: outputs, and user-input errors that exit 2
with a clear message and leave no output (or temporary) file behind.

Calls ``sentence_mtl.cli.main`` in-process; the real model is loaded once for the module
(``SentenceEncoder.from_pretrained`` is wrapped with a cache). One test runs the installed
console script in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sentence_mtl.cli import main
from sentence_mtl.encoder import SentenceEncoder

REPO_ROOT = Path(__file__).resolve().parents[1]
LINES = ["The cat sat on the mat.", "Stocks fell sharply on Monday.", "What a wonderful day!"]


@pytest.fixture(scope="module")
def model_loads():
    """Real encoders, loaded at most once per (model, pooling, normalize) for the module."""
    loaded: dict = {}
    real = SentenceEncoder.from_pretrained.__func__
    calls = []

    def cached(cls, name_or_path=None, **kwargs):
        calls.append((str(name_or_path), kwargs))
        key = (str(name_or_path), tuple(sorted(kwargs.items())))
        if key not in loaded:
            loaded[key] = real(cls, name_or_path, **kwargs)
        return loaded[key]

    mp = pytest.MonkeyPatch()
    mp.setattr(SentenceEncoder, "from_pretrained", classmethod(cached))
    yield calls
    mp.undo()


def run(capsys, *args):
    code = main(["embed", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_dir_only_holds(folder: Path, names: set[str]):
    assert {p.name for p in folder.iterdir()} == names  # no output, no .tmp leftovers


# --------------------------------------------------------------------------- success


def test_embed_txt(tmp_path, capsys, model_loads):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n")
    out = tmp_path / "out" / "emb.npy"
    code, stdout, err = run(capsys, "--input", src, "--output", out)
    assert code == 0, err
    emb = np.load(out)
    assert emb.shape == (len(LINES), 384)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert "3 x 384" in stdout
    assert_dir_only_holds(out.parent, {"emb.npy"})
    # row i is line i: matches encoding each line on its own
    encoder = SentenceEncoder.from_pretrained(model_loads[-1][0], **model_loads[-1][1])
    np.testing.assert_allclose(emb, encoder.encode(LINES), atol=1e-5)


def test_embed_csv_text_column(tmp_path, capsys, model_loads):
    src = tmp_path / "in.csv"
    src.write_text('id,text,label\n1,"Hello, world",a\n2,Second row,b\n3,"He said ""hi""",c\n'
                   '4,Fourth,d\n')
    out = tmp_path / "emb.npy"
    code, _, err = run(capsys, "--input", src, "--output", out)
    assert code == 0, err
    emb = np.load(out)
    assert emb.shape == (4, 384)
    encoder = SentenceEncoder.from_pretrained(model_loads[-1][0], **model_loads[-1][1])
    expected = encoder.encode(["Hello, world", "Second row", 'He said "hi"', "Fourth"])
    np.testing.assert_allclose(emb, expected, atol=1e-5)


def test_embed_no_normalize_and_pooling_are_passed(tmp_path, capsys, model_loads):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES))
    out = tmp_path / "emb.npy"
    code, _, err = run(capsys, "--input", src, "--output", out, "--no-normalize",
                       "--pooling", "cls")
    assert code == 0, err
    assert model_loads[-1][1]["pooling"] == "cls"
    assert model_loads[-1][1]["normalize"] is False
    norms = np.linalg.norm(np.load(out), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)


def test_embed_overwrites_existing_output(tmp_path, capsys, model_loads):
    src = tmp_path / "in.txt"
    src.write_text(LINES[0])
    out = tmp_path / "emb.npy"
    np.save(out, np.zeros((5, 2)))
    code, _, err = run(capsys, "--input", src, "--output", out)
    assert code == 0, err
    assert np.load(out).shape == (1, 384)
    assert_dir_only_holds(tmp_path, {"in.txt", "emb.npy"})


# --------------------------------------------------------------------------- input errors


@pytest.mark.parametrize("name, content, expected", [
    ("empty.txt", "", "empty"),
    ("blank.txt", "  \n\n", "empty"),
    ("gap.txt", "first line\nsecond line\n\nfourth line\n", "line 3"),
    ("spaces.txt", "first line\n   \nthird line\n", "line 2"),
    ("nocol.csv", "id,sentence\n1,hello\n", "no 'text' column"),
    ("emptycell.csv", "id,text\n1,hello\n2,\n3,bye\n", "line 3"),
    ("headeronly.csv", "id,text\n", "no rows"),
    ("data.json", '["a", "b"]', ".json"),
    ("noext", "hello\n", "no extension"),
])
def test_bad_input_exits_2_with_message_and_no_output(tmp_path, capsys, model_loads,
                                                      name, content, expected):
    src = tmp_path / "in" / name
    src.parent.mkdir()
    src.write_text(content)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    n_loads = len(model_loads)
    code, stdout, err = run(capsys, "--input", src, "--output", out_dir / "emb.npy")
    assert code == 2
    assert err.startswith("error: ")
    assert expected in err
    assert str(src) in err
    assert "Traceback" not in err
    assert_dir_only_holds(out_dir, set())
    assert len(model_loads) == n_loads  # input is checked before the model is loaded


def test_empty_cell_message_names_the_column(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("text\nhello\n\"  \"\n")
    code, _, err = run(capsys, "--input", src, "--output", tmp_path / "emb.npy")
    assert code == 2
    assert "line 3" in err and "'text'" in err
    assert_dir_only_holds(tmp_path, {"in.csv"})


def test_missing_input_file(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    code, _, err = run(capsys, "--input", missing, "--output", tmp_path / "emb.npy")
    assert code == 2
    assert str(missing) in err and "does not exist" in err
    assert_dir_only_holds(tmp_path, set())


@pytest.mark.parametrize("output", ["emb.txt", "emb", "emb.npy.bak", "emb.npz"])
def test_output_must_end_in_npy(tmp_path, capsys, model_loads, output):
    src = tmp_path / "in.txt"
    src.write_text("hello\n")
    n_loads = len(model_loads)
    code, _, err = run(capsys, "--input", src, "--output", tmp_path / output)
    assert code == 2
    assert ".npy" in err and output in err
    assert_dir_only_holds(tmp_path, {"in.txt"})
    assert len(model_loads) == n_loads


def test_invalid_utf8(tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_bytes(b"caf\xe9 au lait\n")
    code, _, err = run(capsys, "--input", src, "--output", tmp_path / "emb.npy")
    assert code == 2
    assert "UTF-8" in err
    assert_dir_only_holds(tmp_path, {"in.txt"})


# --------------------------------------------------------------------------- console script


def test_console_script_reports_bad_input(tmp_path):
    script = Path(sys.executable).parent / "sentence-mtl"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "sentence_mtl.cli"]
    src = tmp_path / "in.txt"
    src.write_text("one\n\nthree\n")
    out = tmp_path / "emb.npy"
    result = subprocess.run([*command, "embed", "--input", str(src), "--output", str(out)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "line 2" in result.stderr and "empty line" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert_dir_only_holds(tmp_path, {"in.txt"})
