"""Tests for sentence_mtl.io (atomic writes, JSON), sentence_mtl.results (records, Recorder,
measure) and sentence_mtl.evaluation (the benchmark metrics)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from sentence_mtl import config
from sentence_mtl.config import get_profile
from sentence_mtl.evaluation import benchmark_metric, classification_metrics, cosine_spearman
from sentence_mtl.io import atomic_path, write_json
from sentence_mtl.results import REQUIRED_KEYS, Recorder, load_records, make_record, measure

# --------------------------------------------------------------------------- io


def test_atomic_path_success_replaces_file(tmp_path):
    target = tmp_path / "sub" / "out.txt"  # parent folder is created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert not target.exists()  # nothing visible until the block succeeds
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_path_failure_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_failure_creates_nothing(tmp_path):
    target = tmp_path / "never.npy"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_write_json_round_trips_numpy_values(tmp_path):
    path = tmp_path / "r.json"
    obj = {"f64": np.float64(0.25), "f32": np.float32(0.5), "i64": np.int64(7),
           "bool": np.bool_(True), "array": np.arange(3), "matrix": np.eye(2, dtype=np.int32),
           "path": tmp_path, "plain": [1, "a", None]}
    write_json(path, obj)
    back = json.loads(path.read_text())
    assert back == {"f64": 0.25, "f32": 0.5, "i64": 7, "bool": True, "array": [0, 1, 2],
                    "matrix": [[1, 0], [0, 1]], "path": str(tmp_path), "plain": [1, "a", None]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_write_json_unserialisable_keeps_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --------------------------------------------------------------------------- records


def full_record(**overrides) -> dict:
    record = {k: 0 for k in REQUIRED_KEYS}
    record.update(experiment="e", task="topic", metric="accuracy", value=0.9, config={})
    record.update(overrides)
    return record


def test_make_record_accepts_complete_record():
    record = full_record()
    assert make_record(**record) == record


@pytest.mark.parametrize("missing", ["value", "seed", "metric", "peak_memory_mb"])
def test_make_record_raises_on_missing_key(missing):
    record = full_record()
    del record[missing]
    with pytest.raises(ValueError, match=missing):
        make_record(**record)


def test_recorder_add_fills_defaults_and_save_writes_results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    profile = get_profile("smoke")
    recorder = Recorder("unit_test_experiment", profile, config={"lr": 1e-3})
    record = recorder.add(task="topic", dataset="ag_news", strategy="frozen", metric="accuracy",
                          value=np.float64(0.75), seed=2)
    assert record["seed"] == 2  # given fields win over defaults
    assert record["split"] == "test"
    assert record["n_per_class"] is None
    assert record["train_seconds"] == 0.0
    assert record["trainable_params"] == 0
    assert record["peak_memory_mb"] == 0.0
    assert record["profile"] == "smoke"
    assert record["experiment"] == "unit_test_experiment"
    assert record["config"] == {"lr": 1e-3}
    assert record["is_sample"] is False
    with pytest.raises(ValueError):
        recorder.add(task="topic")  # no dataset, strategy, metric, value
    assert len(recorder.records) == 1

    path = recorder.save()
    assert path == tmp_path / "runs" / "smoke" / "results" / "unit_test_experiment.json"
    saved = load_records(path)
    assert saved == [{**record, "value": 0.75}]


# --------------------------------------------------------------------------- measure


def test_measure_seconds():
    with measure() as m:
        time.sleep(0.2)
    assert 0.2 <= m.seconds < 5


def test_measure_peak_memory_grows_with_allocation():
    with measure() as small:
        pass
    with measure() as big:
        block = np.ones(200 * 2**20 // 8)  # 200 MB, pages touched
        time.sleep(0.05)
    assert block.nbytes == 200 * 2**20
    del block
    assert big.peak_memory_mb > 150
    assert big.peak_memory_mb > small.peak_memory_mb + 100


def test_measure_samples_at_the_end_of_a_short_block():
    # a block shorter than the sampling interval: the final sample must still see the growth
    with measure(interval=10.0) as m:
        block = np.ones(200 * 2**20 // 8)
    del block
    assert m.peak_memory_mb > 150
    assert m.seconds < 5  # exiting does not wait for the interval


def test_measure_peak_catches_freed_memory():
    # allocated and freed inside the block: only the sampler thread can see the peak
    with measure(interval=0.005) as m:
        block = np.ones(200 * 2**20 // 8)
        time.sleep(0.1)
        del block
    assert m.peak_memory_mb > 150


# --------------------------------------------------------------------------- evaluation


def test_classification_metrics_hand_computed():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 0, 1]
    m = classification_metrics(y_true, y_pred, n_classes=3)
    assert m["accuracy"] == pytest.approx(3 / 6)
    # recall per class: 2/3, 1/2, 0/1
    assert m["macro_recall"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    # precision per class: 2/3, 1/3, 0 (never predicted)
    assert m["macro_precision"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 1, 0]]


def test_classification_metrics_counts_absent_classes():
    # class 3 never appears: the matrix still has n_classes rows and columns
    m = classification_metrics([0, 1], [0, 1], n_classes=4)
    assert m["accuracy"] == 1.0
    assert np.array(m["confusion_matrix"]).shape == (4, 4)


def test_benchmark_metric_sentiment_is_macro_recall():
    y_true = [0, 0, 0, 0, 1, 2]
    y_pred = [0, 0, 0, 0, 0, 0]  # majority class: accuracy 4/6, macro recall 1/3
    name, value = benchmark_metric("sentiment", y_true, y_pred)
    assert name == "macro_recall"
    assert value == pytest.approx(1 / 3)
    name, value = benchmark_metric("topic", y_true, y_pred)
    assert name == "accuracy"
    assert value == pytest.approx(4 / 6)


def test_cosine_spearman():
    rng = np.random.default_rng(0)
    emb1 = rng.standard_normal((10, 8))
    angles = np.linspace(0.1, 3.0, 10)
    # emb2 rotates away from emb1 by growing angles: cosine falls monotonically
    ortho = rng.standard_normal((10, 8))
    ortho -= (ortho * emb1).sum(1, keepdims=True) / (emb1 * emb1).sum(1, keepdims=True) * emb1
    unit1 = emb1 / np.linalg.norm(emb1, axis=1, keepdims=True)
    unit_o = ortho / np.linalg.norm(ortho, axis=1, keepdims=True)
    emb2 = (np.cos(angles)[:, None] * unit1 + np.sin(angles)[:, None] * unit_o) * 5.0
    gold = np.arange(10, 0, -1, dtype=float)  # decreasing with the angle
    assert cosine_spearman(emb1, emb2, gold) == pytest.approx(1.0)
    assert cosine_spearman(emb1, emb2, -gold) == pytest.approx(-1.0)


def test_read_input_texts_accepts_bom_and_multiline_cells(tmp_path):
    from sentence_mtl.io import InputError, read_input_texts

    good = tmp_path / "excel.csv"
    good.write_text('\ufefftext,id\n"first line\nsecond line",1\nplain,2\n', encoding="utf-8")
    assert read_input_texts(good) == ["first line\nsecond line", "plain"]
    bad = tmp_path / "bad.csv"
    bad.write_text('text,id\n"spans\ntwo lines",1\n,2\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 4"):
        read_input_texts(bad)


def test_read_input_texts_splits_txt_only_at_newlines(tmp_path):
    from sentence_mtl.io import read_input_texts

    path = tmp_path / "in.txt"
    path.write_bytes("a\u2028b\nc\x0cd\x85e\r\nf\rg\x1ch\n".encode("utf-8"))
    assert read_input_texts(path) == ["a\u2028b", "c\x0cd\x85e", "f\rg\x1ch"]


def test_read_input_texts_rejects_a_folder_and_repeated_text_columns(tmp_path):
    from sentence_mtl.io import InputError, read_input_texts

    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(InputError, match="is a directory, not a file"):
        read_input_texts(tmp_path / "folder.txt")
    (tmp_path / "two.csv").write_text("text,text\na,b\n")
    with pytest.raises(InputError, match="2 columns are named 'text'"):
        read_input_texts(tmp_path / "two.csv")


def test_escape_formula_follows_owasp():
    from sentence_mtl.io import escape_formula

    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert escape_formula(cell) == "'" + cell
    for cell in ("plain", " =1", "1-2", "a@b", ""):
        assert escape_formula(cell) == cell


def test_check_output_path(tmp_path):
    from sentence_mtl.io import InputError, check_output_path

    src = tmp_path / "in.csv"
    src.write_text("text\na\n")
    assert check_output_path(tmp_path / "new" / "out.csv", ".csv", src) == tmp_path / "new" / "out.csv"
    for output, message in ((src, "is the input file"), (tmp_path, "must end in .csv"),
                            (src / "out.csv", "is a file, not a folder")):
        with pytest.raises(InputError, match=message):
            check_output_path(output, ".csv", src)
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        check_output_path(tmp_path / "d.csv", ".csv", src)


def test_predicted_labels_survive_the_record_format_compactly():
    import numpy as np

    from sentence_mtl.results import decode_labels, encode_labels

    labels = np.random.default_rng(0).integers(0, 3, 12284)
    text = encode_labels(labels)
    assert (decode_labels(text) == labels).all() and len(text) < 12284 / 2
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        encode_labels([-1, 2])


def test_the_headline_grid_runs_whole_seeds_first():
    from sentence_mtl.experiments.grids import GRIDS

    headline = GRIDS["standard"].headline
    runs = headline.runs()
    per_seed = len(headline.sizes) * len(headline.strategies)
    assert {seed for _, _, seed in runs[:per_seed]} == {0} and len(headline.seeds) == 10
    assert runs[-1] == ("sequential", None, 9) and "setfit" in headline.strategies
