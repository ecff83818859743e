"""`make serve` right after `make train`: with no fine-tuned retrieval model, /embed and /similar
run the pretrained encoder the multi-task model started from, loaded from the installed backbone
package; /health names it and where it came from, and the hybrid's weight is the validation choice
recorded for that encoder. Once `make retrieval` has promoted a model, the service serves that one.

The multi-task model is the tiny one (its encoder records all-MiniLM-L6-v2 as its starting point,
as `make train`'s does); the pretrained encoder is the real one, from its package.
"""

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from serve_support import running_server

from sentence_mtl.cli import main
from sentence_mtl.config import DEFAULT_MODEL
from sentence_mtl.encoder import SentenceEncoder, model_package
from sentence_mtl.serve.retrieval_source import PRETRAINED_HYBRID, recorded_weight

RECORDS = "results/05_retrieval_finetuning.json"
CHOSEN = 0.3  # the weight the fixture's records say validation chose: neither the default nor 0.7


def _record(strategy, metric, weight):
    return {"experiment": "05_retrieval_finetuning", "task": "retrieval", "dataset": "scifact", "split": "test",
            "strategy": strategy, "seed": 0, "n_per_class": None, "metric": metric, "value": 0.7,
            "fusion_dense_weight": weight}


def _after_make_train(root: Path, bert_dir, start=DEFAULT_MODEL, records=True) -> Path:
    """``root`` as `make train` leaves a clone: models/multitask, notebook 05's records, no retrieval model."""
    from sentence_mtl.multitask import MultiTaskModel

    model = MultiTaskModel.from_encoder_name(str(bert_dir), ["topic", "sentiment"], max_seq_length=128)
    model.encoder.name = start  # the starting point, as the encoder's saved settings record it
    model.save_pretrained(root / "models" / "multitask")
    if records:
        (root / "results").mkdir(parents=True)
        (root / RECORDS).write_text(json.dumps(
            [_record(PRETRAINED_HYBRID, m, CHOSEN) for m in ("ndcg@10", "mrr@10")]
            + [_record("hybrid_bm25s_pretrained", "ndcg@10", 0.7), _record("pretrained", "ndcg@10", None)]))
    return root


@pytest.fixture(scope="module")
def bert_dir(tiny_model_dir):
    return Path(tiny_model_dir)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, bert_dir):
    return _after_make_train(tmp_path_factory.mktemp("after-make-train"), bert_dir)


@pytest.fixture(scope="module")
def server(workdir, tmp_path_factory):
    """`sentence-mtl serve` started in ``workdir`` with no --retrieval-model: (url, log path)."""
    log_path = tmp_path_factory.mktemp("serve-log") / "server.log"
    try:
        with running_server("models/multitask", None, log_path, cwd=workdir) as (url, _):
            yield url, log_path
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def pretrained():
    return SentenceEncoder.from_pretrained(DEFAULT_MODEL)


def test_health_names_the_pretrained_encoder_its_origin_and_its_recorded_weight(server):
    body = httpx.get(server[0] + "/health").json()
    retrieval = body["models"]["retrieval"]
    assert retrieval["kind"] == "pretrained" and retrieval["path"] == retrieval["name"] == DEFAULT_MODEL
    assert retrieval["dim"] == 384 and retrieval["version"].startswith("sha256:")
    assert model_package(DEFAULT_MODEL) in retrieval["origin"] and "make retrieval" in retrieval["origin"]
    assert retrieval["hybrid_dense_weight"] == CHOSEN
    assert PRETRAINED_HYBRID in retrieval["hybrid_dense_weight_origin"]
    assert RECORDS in retrieval["hybrid_dense_weight_origin"]
    assert body["models"]["multitask"]["path"] == "models/multitask"
    assert '"/' not in json.dumps(body)  # no absolute path, the package's folder included


def test_startup_log_says_how_to_get_the_fine_tuned_model(server):
    log = server[1].read_text()
    assert "WARNING" in log and "pretrained encoder" in log and "`make retrieval`" in log
    assert "Traceback" not in log


def test_embed_and_similar_use_the_pretrained_encoder(server, pretrained):
    url = server[0]
    texts = ["Aspirin lowers the risk of heart attack.", "Stocks rallied on Friday."]
    body = httpx.post(url + "/embed", json={"texts": texts}, timeout=60).json()
    assert body["model"] == DEFAULT_MODEL and body["dim"] == 384
    np.testing.assert_allclose(np.array(body["vectors"]), pretrained.encode(texts), atol=1e-5)

    from sentence_mtl.retrieval import bm25_scores, fuse_scores

    query = "zebra crossing repainted"
    documents = ["Oil prices rose sharply.", "The zebra crossing was repainted.", "The bank cut rates."]
    results = httpx.post(url + "/similar", json={"query": query, "documents": documents, "method": "hybrid"},
                         timeout=60).json()["results"]
    vectors = pretrained.encode([query, *documents])
    expected = fuse_scores((vectors[1:] @ vectors[0])[None], bm25_scores([query], documents), CHOSEN)[0]
    assert [r["index"] for r in results] == list(np.argsort(-expected, kind="stable"))
    assert [r["score"] for r in results] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    predictions = httpx.post(url + "/predict", json={"texts": texts}, timeout=60).json()["predictions"]
    assert [set(p) for p in predictions] == [{"text", "topic", "sentiment"}] * 2


def test_after_make_retrieval_the_promoted_model_is_served(workdir, tmp_path, monkeypatch, bert_dir):
    from fastapi.testclient import TestClient

    from sentence_mtl.serve import create_app

    shutil.copytree(workdir, tmp_path, dirs_exist_ok=True)
    run = tmp_path / "models" / "retrieval" / "20260101-000000-seed0"
    SentenceEncoder.from_pretrained(str(bert_dir), max_seq_length=128).save_pretrained(run)
    (run / "metrics.json").write_text(json.dumps({"val_ndcg@10": 0.7, "fusion_dense_weight": 0.8}))
    (run.parent / "best").symlink_to(run.name)
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app()) as c:
        retrieval = c.get("/health").json()["models"]["retrieval"]
        assert c.post("/embed", json={"texts": ["a"]}).json()["model"] == "models/retrieval/20260101-000000-seed0"
    assert retrieval["kind"] == "fine-tuned" and retrieval["dim"] == 32 and "make retrieval" in retrieval["origin"]
    assert retrieval["hybrid_dense_weight"] == 0.8 and "metrics.json" in retrieval["hybrid_dense_weight_origin"]


def test_without_a_recorded_choice_the_shares_are_equal_and_health_says_why(tmp_path, monkeypatch, bert_dir):
    from fastapi.testclient import TestClient

    from sentence_mtl.serve import create_app

    _after_make_train(tmp_path / "no-records", bert_dir, records=False)
    _after_make_train(tmp_path / "other-start", bert_dir, start=str(bert_dir))
    for folder, why in (("no-records", f"no single {PRETRAINED_HYBRID} weight"),
                        ("other-start", f"records the hybrid of {DEFAULT_MODEL} only")):
        monkeypatch.chdir(tmp_path / folder)
        retrieval = TestClient(create_app()).get("/health").json()["models"]["retrieval"]
        assert retrieval["kind"] == "pretrained" and retrieval["hybrid_dense_weight"] == 0.5
        assert "equal shares" in retrieval["hybrid_dense_weight_origin"]
        assert why in retrieval["hybrid_dense_weight_origin"], retrieval
    assert retrieval["path"] == Path(bert_dir).name and "the folder" in retrieval["origin"]


def test_recorded_weight_needs_one_valid_agreed_choice(tmp_path):
    path = tmp_path / "records.json"
    for records, expected in (([_record(PRETRAINED_HYBRID, "ndcg@10", 0.6)] * 2, 0.6),
                              ([_record(PRETRAINED_HYBRID, "ndcg@10", 0.6), _record(PRETRAINED_HYBRID, "m", 0.4)], None),
                              ([_record(PRETRAINED_HYBRID, "ndcg@10", 1.5)], None),
                              ([_record(PRETRAINED_HYBRID, "ndcg@10", None)], None),
                              ([_record("hybrid_bm25s_pretrained", "ndcg@10", 0.7)], None),
                              ({"records": []}, None), ([1, "x"], None)):
        path.write_text(json.dumps(records))
        assert recorded_weight(path) == expected, records
    path.write_text("[not json")
    assert recorded_weight(path) is None and recorded_weight(tmp_path / "missing.json") is None


def test_a_missing_multitask_model_is_still_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no multi-task model at models/multitask") and "`make train`" in err
    assert "\n" not in err and "make retrieval" not in err


def test_a_pretrained_encoder_that_cannot_load_is_one_clear_line(tmp_path, monkeypatch, capsys, bert_dir):
    _after_make_train(tmp_path, bert_dir, start="example-org/not-an-installed-model")
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no fine-tuned retrieval model at models/retrieval/best")
    assert "example-org/not-an-installed-model" in err and "make retrieval" in err and "offline-model" in err
    assert "\n" not in err
