"""The CLI against careless or hostile input and output paths, through the real command.

Each bad input ends with exit status 2 and one ``error:`` line (argparse's own errors: its
usage, then one error line), never a traceback, and leaves no output behind. Most checks run
before any model is loaded, so they take a fraction of a second; the two that label texts
use the tiny model of ``conftest.py``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess

import pytest

from cli_support import assert_one_error_line as assert_error_line
from cli_support import cli
from sentence_mtl.config import REPO_ROOT


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    return assert_error_line(result.returncode, result.stderr, *fragments)


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """argparse's rejection: usage lines, then one line naming the argument."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last


# --------------------------------------------------------------------------- batch size, item counts


@pytest.mark.parametrize("command, value", [("embed", "-1"), ("embed", "0"), ("predict", "-5"), ("predict", "0")])
def test_batch_size_must_be_a_positive_integer(tmp_path, texts_txt, model_dir, tiny_model_dir, command, value):
    out = tmp_path / ("out.npy" if command == "embed" else "out.csv")
    model = tiny_model_dir if command == "embed" else model_dir
    result = cli(command, "--model", model, "--input", texts_txt, "--output", out, "--batch-size", value)
    assert_usage_error(result, "--batch-size", "positive integer")
    assert not out.exists()


@pytest.mark.parametrize("value", ["-5", "0"])
def test_evaluate_max_items_must_be_a_positive_integer(model_dir, value):
    result = cli("evaluate", "--model", model_dir, "--task", "sentiment", "--max-items", value)
    assert_usage_error(result, "--max-items", "positive integer")


@pytest.mark.parametrize("max_items, scored", [(2, None), (7, 6), (12, 12)])
def test_evaluate_scores_at_most_max_items(model_dir, max_items, scored):
    """Below one item per class the stratified subset would have scored more than asked (2 -> 3
    sentiment items): that is an error; otherwise at most --max-items, equal per class."""
    from sentence_mtl.config import SAMPLE_DATA_DIR

    result = cli("evaluate", "--model", model_dir, "--task", "sentiment", "--max-items", max_items,
                 "--data-dir", SAMPLE_DATA_DIR)
    if scored is None:
        assert_one_error_line(result, "--max-items 2", "3 classes")
    else:
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["n"] == scored


# --------------------------------------------------------------------------- input files


def test_a_directory_as_input_is_called_a_directory(tmp_path, model_dir):
    folder = tmp_path / "texts.txt"
    folder.mkdir()
    line = assert_one_error_line(cli("predict", "--model", model_dir, "--input", folder,
                                     "--output", tmp_path / "out.csv"), "is a directory, not a file")
    assert "does not exist" not in line
    assert not (tmp_path / "out.csv").exists()


def test_duplicate_text_columns_are_an_error(tmp_path, model_dir):
    src = tmp_path / "in.csv"
    src.write_text("text,label,text\nfirst,a,other\nsecond,b,more\n")
    assert_one_error_line(cli("predict", "--model", model_dir, "--input", src, "--output", tmp_path / "out.csv"),
                          str(src), "2 columns are named 'text'")
    assert {p.name for p in tmp_path.iterdir()} == {"in.csv"}


def test_a_csv_cell_past_the_csv_field_limit_is_an_error(tmp_path, model_dir):
    src = tmp_path / "in.csv"
    src.write_text("text\nshort\n" + "x" * 200_000 + "\n")
    assert_one_error_line(cli("predict", "--model", model_dir, "--input", src, "--output", tmp_path / "out.csv"),
                          f"{src}, line 3", "not readable as CSV")


def test_txt_lines_end_only_at_newline(tmp_path, model_dir):
    """U+2028, U+0085, form feed, vertical tab and a lone CR are part of a line, not line breaks."""
    lines = ["one\u2028still one", "two\x0ctwo\x0btwo", "three\x85three\rthree", "four"]
    src = tmp_path / "in.txt"
    src.write_bytes(("\n".join(lines[:3]) + "\r\n" + lines[3] + "\r\n").encode("utf-8"))
    out = tmp_path / "out.csv"
    result = cli("predict", "--model", model_dir, "--input", src, "--output", out)
    assert result.returncode == 0, result.stderr
    assert "wrote 4 predictions" in result.stdout
    with out.open(newline="", encoding="utf-8") as f:
        assert [row["text"] for row in csv.DictReader(f)] == lines


# --------------------------------------------------------------------------- output paths


def test_predict_refuses_to_overwrite_its_input(tmp_path, model_dir):
    src = tmp_path / "same.csv"
    original = "text\nkeep me\n"
    src.write_text(original)
    (tmp_path / "sub").mkdir()
    for output in (src, tmp_path / "sub" / ".." / "same.csv"):
        assert_one_error_line(cli("predict", "--model", model_dir, "--input", src, "--output", output),
                              "is the input file")
    os.link(src, tmp_path / "link.csv")  # another name for the same file
    assert_one_error_line(cli("predict", "--model", model_dir, "--input", src, "--output", tmp_path / "link.csv"),
                          "is the input file")
    assert src.read_text() == original
    assert {p.name for p in tmp_path.iterdir()} == {"same.csv", "sub", "link.csv"}


@pytest.mark.parametrize("command, suffix", [("embed", ".npy"), ("predict", ".csv")])
def test_output_that_is_a_directory(tmp_path, texts_txt, model_dir, tiny_model_dir, command, suffix):
    out = tmp_path / f"out{suffix}"
    out.mkdir()
    model = tiny_model_dir if command == "embed" else model_dir
    assert_one_error_line(cli(command, "--model", model, "--input", texts_txt, "--output", out),
                          str(out), "is a directory")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command, suffix", [("embed", ".npy"), ("predict", ".csv")])
def test_output_that_cannot_be_written(tmp_path, texts_txt, model_dir, tiny_model_dir, command, suffix):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    model = tiny_model_dir if command == "embed" else model_dir
    out = blocker / "sub" / f"out{suffix}"
    assert_one_error_line(cli(command, "--model", model, "--input", texts_txt, "--output", out),
                          f"Cannot write {out}", "is a file, not a folder")


def test_record_path_that_is_a_directory(tmp_path, model_dir):
    from sentence_mtl.config import SAMPLE_DATA_DIR

    result = cli("evaluate", "--model", model_dir, "--task", "sentiment", "--data-dir", SAMPLE_DATA_DIR,
                 "--record", tmp_path)
    assert_one_error_line(result, f"--record {tmp_path} is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_output_in_a_read_only_folder(tmp_path, texts_txt, model_dir):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert_one_error_line(cli("predict", "--model", model_dir, "--input", texts_txt,
                                  "--output", folder / "out.csv"), "no permission")
    finally:
        folder.chmod(0o755)


# --------------------------------------------------------------------------- spreadsheet formulas, truncation


FORMULAS = ["=1+1", "+SUM(A1:A2)", "-2+3", "@SUM(A1)", "\tleading tab", "a plain sentence"]


def test_escape_formulas_makes_formula_cells_inert(tmp_path, model_dir):
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text"], *[[t] for t in FORMULAS]])
    out = tmp_path / "out.csv"
    result = cli("predict", "--model", model_dir, "--input", src, "--output", out, "--escape-formulas")
    assert result.returncode == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["text"] for r in rows] == ["'" + t for t in FORMULAS[:-1]] + [FORMULAS[-1]]
    assert all(not r[c].startswith(("=", "+", "-", "@")) for r in rows for c in r)


def test_without_escape_formulas_the_text_column_is_the_input(tmp_path, model_dir):
    from sentence_mtl.cli import main

    src = tmp_path / "in.txt"
    src.write_text("\n".join(FORMULAS) + "\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(model_dir), "--input", str(src), "--output", str(out)]) == 0
    with out.open(newline="", encoding="utf-8") as f:
        assert [r["text"] for r in csv.DictReader(f)] == FORMULAS


@pytest.mark.parametrize("command", ["embed", "predict"])
def test_help_documents_truncation_and_formula_escaping(command):
    result = cli(command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "max_seq_length" in text and "truncated" in text
    if command == "predict":
        assert "--escape-formulas" in text and "formula" in text


def test_usage_documents_truncation_and_formula_escaping():
    usage = (REPO_ROOT / "docs" / "usage.md").read_text()
    assert "--escape-formulas" in usage and "truncated" in usage and "max_seq_length" in usage
