"""Input files read as streams: ``embed`` encodes and writes in bounded chunks, SIGTERM leaves no
temporary file, a CSV quote left open is an error naming its line, and a line the model cannot
read is refused by the CLI as the service refuses it. All on the tiny BERT (seconds)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_support import assert_one_error_line, cli
from serve_support import quiet_env

from sentence_mtl import cli as cli_module
from sentence_mtl.encoder import SentenceEncoder
from sentence_mtl.io import read_input_texts


def test_embed_encodes_and_writes_in_bounded_chunks(tmp_path, tiny_model_dir, monkeypatch, capsys):
    lines = [f"sentence number {i} about topic {i % 3}" for i in range(10)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    sizes = []
    real = SentenceEncoder.encode

    def spy(self, texts, *args, **kwargs):
        sizes.append(len(texts))
        return real(self, texts, *args, **kwargs)

    monkeypatch.setattr(cli_module, "EMBED_CHUNK", 3)
    monkeypatch.setattr(SentenceEncoder, "encode", spy)
    out = tmp_path / "out.npy"
    assert cli_module.main(["embed", "--input", str(tmp_path / "in.txt"), "--output", str(out), "--model",
                            tiny_model_dir]) == 0
    assert sizes == [3, 3, 3, 1]  # never the whole file at once
    vectors = np.load(out)
    expected = real(SentenceEncoder.from_pretrained(tiny_model_dir), lines)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert "wrote 10 x 32 embeddings" in capsys.readouterr().out
    assert {p.name for p in tmp_path.iterdir()} == {"in.txt", "out.npy"}


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path, tiny_model_dir):
    (tmp_path / "in.txt").write_text("".join(f"a fairly ordinary sentence, number {i}\n" for i in range(200_000)))
    out = tmp_path / "out.npy"
    proc = subprocess.Popen([sys.executable, "-m", "sentence_mtl.cli", "embed", "--input", str(tmp_path / "in.txt"),
                             "--output", str(out), "--model", tiny_model_dir], env=quiet_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".out.npy.") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, "no temporary output file appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "terminated", err[-500:]
    assert {p.name for p in tmp_path.iterdir()} == {"in.txt"}


@pytest.mark.parametrize("content, line", [
    ('text\na\n"5 stars, great\nc\nd\n', 3),  # the quote is never closed: it would swallow c and d
    ('text,id\nok,1\n"open,2\nnext,3\n', 3),
])
def test_a_csv_quote_left_open_is_an_error_naming_its_line(tmp_path, content, line):
    src = tmp_path / "in.csv"
    src.write_text(content)
    result = cli("predict", "--model", tmp_path / "unused", "--input", src, "--output", tmp_path / "o.csv")
    assert_one_error_line(result.returncode, result.stderr, f"line {line}: not readable as CSV",
                          "quoted cell is not closed")
    assert not (tmp_path / "o.csv").exists()


def test_a_quoted_cell_spanning_lines_and_closed_is_one_text(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('text\n"two\nlines"\nnext\n')
    assert read_input_texts(src) == ["two\nlines", "next"]


@pytest.mark.parametrize("line", ["\u200b", "\x00", "\ufeff", "\u200b\u200c\ufeff", "\u0301"])
@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_a_line_the_model_cannot_read_is_refused_like_the_service_refuses_it(tmp_path, line, suffix):
    src = tmp_path / f"in{suffix}"
    src.write_text(("text\n" if suffix == ".csv" else "") + f"fine\n{line}\n", encoding="utf-8")
    result = cli("predict", "--model", tmp_path / "unused", "--input", src, "--output", tmp_path / "o.csv")
    assert_one_error_line(result.returncode, result.stderr, f"line {2 + (suffix == '.csv')}:",
                          "nothing the model reads")


def test_the_cli_and_the_service_share_one_readability_rule():
    from sentence_mtl.readable import is_readable
    from sentence_mtl.serve.schemas import _valid_text

    for text in ["\u200b", "\x00", "\ufeff", "\u0301\u200d", "\ue000", "ok", "\u00e9", "a\u200b"]:
        try:
            _valid_text(text)
            served = True
        except ValueError:
            served = False
        assert served == is_readable(text), repr(text)
