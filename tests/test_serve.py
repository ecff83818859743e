"""`sentence-mtl serve` against a real uvicorn server, run as a subprocess on the tiny models.

The server is started once for the module with small limits (8 texts, 100 characters, 10
documents, 20 kB bodies: from environment variables and a flag, so both paths are exercised).
Tests check the four endpoints' shapes and numbers, that every bad input gets the right 4xx and
a JSON ``error`` naming the problem, that the server survives all of it (no traceback in its log),
and a bounded concurrent load. Weights are random: nothing here is about quality.
"""

import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from serve_support import build_service_models, quiet_env, running_server

import sentence_mtl
from sentence_mtl.cli import main
from sentence_mtl.data import TASKS
from sentence_mtl.encoder import SentenceEncoder

LIMITS_ENV = {"SENTENCE_MTL_MAX_TEXTS": "8", "SENTENCE_MTL_MAX_DOCUMENTS": "10",
              "SENTENCE_MTL_MAX_BODY_BYTES": "20000"}
MAX_TEXT_CHARS = 100  # given as --max-text-chars
TASK_LABELS = {task: list(TASKS[task].label_names) for task in ("topic", "sentiment")}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_model_dir):
    return build_service_models(tmp_path_factory.mktemp("serve-models"), tiny_model_dir)


@pytest.fixture(scope="module")
def server(model_dirs, tmp_path_factory):
    """Base URL of a `python -m sentence_mtl.cli serve` subprocess; yields (url, log path)."""
    log_path = tmp_path_factory.mktemp("serve-log") / "server.log"
    try:
        with running_server(*model_dirs, log_path, env=LIMITS_ENV,
                            args=["--max-text-chars", str(MAX_TEXT_CHARS)]) as (url, _):
            yield url, log_path
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server[0], timeout=60) as c:
        yield c


# --------------------------------------------------------------------------- happy paths


def test_health_names_models_versions_and_limits(client, model_dirs):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["package_version"] == sentence_mtl.__version__
    multitask, retrieval = body["models"]["multitask"], body["models"]["retrieval"]
    assert multitask["tasks"] == ["topic", "sentiment"] and multitask["labels"] == TASK_LABELS
    assert multitask["version"].startswith("sha256:") and len(multitask["version"]) == len("sha256:") + 12
    assert retrieval["version"].startswith("sha256:") and retrieval["dim"] == 32
    limits = body["limits"]
    assert {k: limits[k] for k in ("max_texts", "max_text_chars", "max_documents", "max_body_bytes")} == {
        "max_texts": 8, "max_text_chars": MAX_TEXT_CHARS, "max_documents": 10, "max_body_bytes": 20000}
    assert limits["header_timeout"] > 0 and limits["max_concurrency"] > 0
    assert multitask["runtime"] == retrieval["runtime"] == "pytorch fp32"
    assert retrieval["kind"] == "folder" and retrieval["origin"] == "the folder retrieval"
    assert retrieval["hybrid_dense_weight"] == 0.5 and "equal shares" in retrieval["hybrid_dense_weight_origin"]


def test_health_and_embed_name_model_folders_not_absolute_paths(client, model_dirs):
    """The models live outside the server's working directory: only their folder names show."""
    body = client.get("/health").json()
    assert body["models"]["multitask"]["path"] == model_dirs[0].name == "multitask"
    assert body["models"]["retrieval"]["path"] == "retrieval"
    embed = client.post("/embed", json={"texts": ["a"]}).json()
    assert embed["model"] == "retrieval" and embed["version"] == body["models"]["retrieval"]["version"]
    root = str(model_dirs[0].parent.parent)
    for text in (json.dumps(body), json.dumps({k: v for k, v in embed.items() if k != "vectors"})):
        assert root not in text and '"/' not in text, text


def test_head_health_answers_like_get(client):
    head, get = client.head("/health"), client.get("/health")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json").json()
    assert {"/embed", "/predict", "/similar", "/health"} <= set(schema["paths"])
    assert "422" in schema["paths"]["/predict"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_embed_returns_unit_vectors_equal_to_the_encoder(client, model_dirs):
    texts = ["Stocks rallied on Friday.", "Café über naïve 😀", "Stocks rallied on Friday."]
    body = client.post("/embed", json={"texts": texts}).json()
    assert body["dim"] == 32 and body["model"] == "retrieval" and body["version"].startswith("sha256:")
    vectors = np.array(body["vectors"])
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    expected = SentenceEncoder.from_pretrained(model_dirs[1]).encode(texts)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_predict_labels_and_probabilities(client):
    texts = ["Stocks rallied on Friday.", "What a lovely film!", "Café über naïve 😀"]
    predictions = client.post("/predict", json={"texts": texts}).json()["predictions"]
    assert [p["text"] for p in predictions] == texts
    for p in predictions:
        assert set(p) == {"text", "topic", "sentiment"}
        for task, labels in TASK_LABELS.items():
            head = p[task]
            assert list(head["probabilities"]) == labels and head["label"] in labels
            assert sum(head["probabilities"].values()) == pytest.approx(1, abs=1e-5)
            assert head["probability"] == max(head["probabilities"].values())
            assert head["probabilities"][head["label"]] == head["probability"]


def test_similar_ranks_by_cosine(client):
    documents = ["The home team won the final.", "Oil prices rose sharply.", "Who won the match?",
                 "A new phone was released.", "Rain is expected tomorrow.", "The bank cut rates.",
                 "She scored twice."]
    body = client.post("/similar", json={"query": "Who won the match?", "documents": documents,
                                         "top_k": 4}).json()
    results = body["results"]
    assert len(results) == 4 and len({r["index"] for r in results}) == 4
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert results[0]["index"] == 2 and results[0]["score"] == pytest.approx(1, abs=1e-5)
    assert all(documents[r["index"]] == r["document"] for r in results)
    vectors = np.array(client.post("/embed", json={"texts": ["Who won the match?"] + documents[:7]}).json()["vectors"])
    for r in results:
        assert r["score"] == pytest.approx(float(vectors[0] @ vectors[1 + r["index"]]), abs=1e-5)
    # default top_k: 5, or every document when there are fewer
    assert len(client.post("/similar", json={"query": "q", "documents": documents}).json()["results"]) == 5
    assert len(client.post("/similar", json={"query": "q", "documents": documents[:3]}).json()["results"]) == 3

    def ranked(**payload):
        return client.post("/similar", json={"query": "q", **payload}).json()["results"]

    assert len(ranked(documents=documents[:2], top_k=3)) == 2  # top_k over the documents sent: all of them
    assert len(ranked(documents=documents, top_k=3.0)) == 3  # JSON Schema counts 3.0 as an integer


def test_similar_hybrid_fuses_cosine_with_bm25_over_the_documents_sent(client):
    from sentence_mtl.retrieval import bm25_scores, fuse_scores

    documents = ["Oil prices rose sharply.", "The zebra crossing was repainted.", "Who won the match?",
                 "The bank cut rates."]
    query = "zebra crossing repainted"
    weight = client.get("/health").json()["models"]["retrieval"]["hybrid_dense_weight"]
    assert weight == 0.5  # the test model records no chosen weight: the default
    results = client.post("/similar", json={"query": query, "documents": documents, "method": "hybrid",
                                            "top_k": 4}).json()["results"]
    vectors = np.array(client.post("/embed", json={"texts": [query] + documents}).json()["vectors"])
    expected = fuse_scores((vectors[1:] @ vectors[0])[None], bm25_scores([query], documents), weight)[0]
    assert [r["index"] for r in results] == list(np.argsort(-expected, kind="stable"))
    assert [r["score"] for r in results] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    assert results[0]["index"] == 1  # the only document sharing the query's words
    # documents without a word BM25 can match: the dense ranking alone decides
    symbols = client.post("/similar", json={"query": "the", "documents": ["!!", "?"], "method": "hybrid"})
    assert symbols.status_code == 200 and len(symbols.json()["results"]) == 2
    _assert_error(client.post("/similar", json={"query": "q", "documents": ["d"], "method": "sparse"}), 422,
                  ["method"])


def test_hybrid_weight_is_read_from_the_model_folder(tmp_path):
    from sentence_mtl.serve.retrieval_source import folder_source, metrics_weight

    assert metrics_weight(tmp_path) is None
    for written, read in (({"fusion_dense_weight": 0.3}, 0.3), ({"fusion_dense_weight": 7}, None),
                          ({"fusion_dense_weight": "x"}, None), ({"fusion_dense_weight": True}, None),
                          ([1], None)):
        (tmp_path / "metrics.json").write_text(json.dumps(written))
        assert metrics_weight(tmp_path) == read
    (tmp_path / "metrics.json").write_text("{not json")
    assert metrics_weight(tmp_path) is None
    source = folder_source(tmp_path, default=False)
    assert source.dense_weight == 0.5 and "equal shares" in source.weight_origin and source.kind == "folder"
    (tmp_path / "metrics.json").write_text(json.dumps({"fusion_dense_weight": 0.3, "val_ndcg@10": 0.7}))
    source = folder_source(tmp_path, default=False)
    assert (source.dense_weight, source.kind) == (0.3, "fine-tuned") and "validation" in source.weight_origin


# --------------------------------------------------------------------------- bad input

TEXTS_CASES = [
    ({"texts": "hello"}, 422, ["'texts'", "array", '["hello"]']),
    ({"texts": []}, 422, ["'texts'", "empty"]),
    ({"texts": ["ok", "   "]}, 422, ["'texts[1]'", "whitespace"]),
    ({"texts": ["ok", ""]}, 422, ["'texts[1]'", "empty"]),
    ({"texts": ["ok", 3]}, 422, ["'texts[1]'", "must be a string"]),
    ({"texts": ["ok", None]}, 422, ["'texts[1]'", "must be a string"]),
    ({"texts": [["nested"]]}, 422, ["'texts[0]'", "must be a string"]),
    ({"texts": ["x"] * 9}, 422, ["Too many texts", "9", "at most 8", "max_texts"]),
    ({"texts": ["ok", "x" * (MAX_TEXT_CHARS + 1)]}, 422, ["'texts[1]'", f"{MAX_TEXT_CHARS + 1} characters",
                                                          f"limit of {MAX_TEXT_CHARS}", "max_text_chars"]),
    ({}, 422, ["'texts' is missing"]),
    ({"text": ["a"]}, 422, ["Unknown field 'text'"]),
    (["a"], 422, ["JSON object", "array"]),
    ("a", 422, ["JSON object", "string"]),
]

SIMILAR_CASES = [
    ({"query": "", "documents": ["a"]}, 422, ["'query'", "empty"]),
    ({"query": "  ", "documents": ["a"]}, 422, ["'query'", "whitespace"]),
    ({"query": ["q"], "documents": ["a"]}, 422, ["'query'", "must be a string"]),
    ({"query": "q", "documents": []}, 422, ["'documents'", "empty"]),
    ({"query": "q", "documents": "a"}, 422, ["'documents'", "array"]),
    ({"query": "q", "documents": ["a", 1]}, 422, ["'documents[1]'", "must be a string"]),
    ({"query": "q", "documents": ["a", " "]}, 422, ["'documents[1]'", "whitespace"]),
    ({"query": "q"}, 422, ["'documents' is missing"]),
    ({"query": "q", "documents": ["a"] * 11}, 422, ["Too many documents", "at most 10", "max_documents"]),
    ({"query": "q" * (MAX_TEXT_CHARS + 1), "documents": ["a"]}, 422, ["'query'", "characters"]),
    ({"query": "q", "documents": ["a", "d" * (MAX_TEXT_CHARS + 1)]}, 422, ["'documents[1]'", "characters"]),
    ({"query": "q", "documents": ["a", "b"], "top_k": 0}, 422, ["'top_k'", "at least 1"]),
    ({"query": "q", "documents": ["a", "b"], "top_k": 11}, 422, ["'top_k'", "at most 10"]),
    ({"query": "q", "documents": ["a", "b"], "top_k": "1"}, 422, ["'top_k'", "integer"]),
    ({"query": "q", "documents": ["a", "b"], "top_k": 1.5}, 422, ["'top_k'", "integer"]),
]


def _assert_error(response, status, fragments):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and "detail" in body
    for fragment in fragments:
        assert fragment in body["error"], (fragment, body["error"])


@pytest.mark.parametrize("endpoint", ["/predict", "/embed"])
@pytest.mark.parametrize("payload, status, fragments", TEXTS_CASES)
def test_bad_texts_get_a_clear_4xx(client, endpoint, payload, status, fragments):
    _assert_error(client.post(endpoint, json=payload), status, fragments)


@pytest.mark.parametrize("payload, status, fragments", SIMILAR_CASES)
def test_bad_similar_requests_get_a_clear_4xx(client, payload, status, fragments):
    _assert_error(client.post("/similar", json=payload), status, fragments)


@pytest.mark.parametrize("content, headers, fragments", [
    (b'{"texts": ["unterminated', {"content-type": "application/json"}, ["not valid JSON"]),
    (b"texts=hello", {"content-type": "application/x-www-form-urlencoded"}, ["Content-Type: application/json"]),
    (b'{"texts": ["no header"]}', {}, ["Content-Type: application/json"]),
    (b"", {"content-type": "application/json"}, ["body is empty"]),
])
def test_malformed_bodies(client, content, headers, fragments):
    _assert_error(client.post("/predict", content=content, headers=headers), 422, fragments)


def test_oversized_body_is_refused_before_parsing(client):
    _assert_error(client.post("/predict", content=b"[" * 30000, headers={"content-type": "application/json"}),
                  413, ["over the limit of 20000 bytes"])


def test_unknown_paths_and_methods_are_json(client):
    _assert_error(client.get("/nope"), 404, ["/nope", "POST /predict"])
    _assert_error(client.get("/predict"), 405, ["GET is not allowed"])


@pytest.mark.parametrize("method, path, allowed", [("GET", "/predict", "POST"), ("TRACE", "/embed", "POST"),
                                                   ("PUT", "/health", "GET, HEAD"), ("DELETE", "/similar", "POST")])
def test_405_names_the_allowed_methods(client, method, path, allowed):
    response = client.request(method, path)
    _assert_error(response, 405, [f"{method} is not allowed"])
    assert response.headers["allow"] == allowed


# --------------------------------------------------------------------------- load, then survival


def test_concurrent_predict_load(server):
    url, clients, per_client = server[0], 8, 50
    failures, latencies = [], []

    def worker(i):
        with httpx.Client(base_url=url, timeout=60) as c:
            for j in range(per_client):
                texts = [f"client {i} request {j}: markets rose", "a short one"][: 1 + j % 2]
                try:
                    start = time.perf_counter()
                    r = c.post("/predict", json={"texts": texts})
                    latencies.append(time.perf_counter() - start)
                    if r.status_code != 200 or [p["text"] for p in r.json()["predictions"]] != texts:
                        failures.append((r.status_code, r.text[:200]))
                except Exception as e:  # noqa: BLE001 - every failure counts
                    failures.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(latencies) == clients * per_client


def test_server_is_still_healthy_and_logged_no_traceback(client, server):
    assert client.get("/health").json()["status"] == "ok"
    assert len(client.post("/predict", json={"texts": ["still here"]}).json()["predictions"]) == 1
    log = server[1].read_text()
    assert "Traceback" not in log and "Uvicorn running" in log


# --------------------------------------------------------------------------- in-process: 500s, CLI errors


def test_an_exception_in_a_model_is_a_logged_500(model_dirs, caplog):
    from fastapi.testclient import TestClient

    from sentence_mtl.serve import create_app

    app = create_app(*model_dirs)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    app.state.service.multitask.predict_proba = broken
    with TestClient(app, raise_server_exceptions=False) as c:
        _assert_error(c.post("/predict", json={"texts": ["x"]}), 500, ["Internal server error"])
        assert c.post("/embed", json={"texts": ["x"]}).status_code == 200
    assert "boom" in caplog.text


def test_int8_service_names_its_runtime_and_answers_like_fp32(model_dirs, monkeypatch):
    from fastapi.testclient import TestClient

    from sentence_mtl.serve import create_app_from_env

    monkeypatch.setenv("SENTENCE_MTL_MULTITASK_MODEL", str(model_dirs[0]))
    monkeypatch.setenv("SENTENCE_MTL_RETRIEVAL_MODEL", str(model_dirs[1]))
    monkeypatch.setenv("SENTENCE_MTL_INT8", "1")
    fp32 = SentenceEncoder.from_pretrained(model_dirs[1])
    texts = ["a sentence about the markets today", "the team won the final"]
    with TestClient(create_app_from_env()) as c:
        models = c.get("/health").json()["models"]
        assert models["multitask"]["runtime"] == models["retrieval"]["runtime"] == "onnxruntime int8"
        vectors = np.array(c.post("/embed", json={"texts": texts}).json()["vectors"])
        assert len(c.post("/predict", json={"texts": texts}).json()["predictions"]) == 2
    assert ((vectors * fp32.encode(texts)).sum(1) > 0.95).all()
    monkeypatch.setenv("SENTENCE_MTL_INT8", "yes please")
    with pytest.raises(ValueError, match="SENTENCE_MTL_INT8"):
        create_app_from_env()


def test_serve_with_a_missing_model_exits_2_naming_the_make_command(tmp_path, model_dirs, capsys):
    code = main(["serve", "--multitask-model", str(tmp_path / "none"), "--retrieval-model", str(model_dirs[1])])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "make train" in err and str(tmp_path / "none") in err
    assert "make retrieval" not in err
    code = main(["serve", "--multitask-model", str(model_dirs[0]), "--retrieval-model", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and "make retrieval" in err and "make train" not in err


def test_serve_on_a_taken_port_exits_2_with_one_clear_line(model_dirs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "sentence_mtl.cli", "serve", "--port", str(port),
                                 "--multitask-model", str(model_dirs[0]), "--retrieval-model", str(model_dirs[1])],
                                capture_output=True, text=True, timeout=120, env=quiet_env())
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and last.startswith(f"error: could not listen on 127.0.0.1:{port}"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("port, why", [("70000", "0 to 65535"), ("-1", "0 to 65535"), ("http", "not an integer")])
def test_serve_on_an_impossible_port_is_refused_before_the_models_load(model_dirs, port, why):
    result = subprocess.run([sys.executable, "-m", "sentence_mtl.cli", "serve", "--port", port,
                             "--multitask-model", str(model_dirs[0]), "--retrieval-model", str(model_dirs[1])],
                            capture_output=True, text=True, timeout=120, env=quiet_env())
    assert result.returncode == 2 and "--port" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and why in result.stderr


def test_serve_rejects_a_bad_limit(monkeypatch, capsys):
    monkeypatch.setenv("SENTENCE_MTL_MAX_TEXTS", "lots")
    assert main(["serve"]) == 2
    assert "SENTENCE_MTL_MAX_TEXTS" in capsys.readouterr().err
    monkeypatch.delenv("SENTENCE_MTL_MAX_TEXTS")
    assert main(["serve", "--max-text-chars", "0"]) == 2
    assert "max_text_chars" in capsys.readouterr().err


def test_service_limits_precedence():
    from sentence_mtl.serve import ServiceLimits

    assert ServiceLimits.from_env({}) == ServiceLimits()
    limits = ServiceLimits.from_env({"SENTENCE_MTL_MAX_TEXTS": "3", "SENTENCE_MTL_MAX_DOCUMENTS": "7"},
                                    max_texts=5, max_text_chars=None)
    assert (limits.max_texts, limits.max_text_chars, limits.max_documents) == (5, 2000, 7)
    with pytest.raises(ValueError, match="max_documents"):
        ServiceLimits(max_documents=0)
    with pytest.raises(ValueError, match="MAX_BUFFERED_BYTES"):
        ServiceLimits(max_body_bytes=10, max_buffered_bytes=9)
    with pytest.raises(ValueError, match="MAX_BODY_ITEMS"):  # a request of max_texts texts could not be read
        ServiceLimits(max_texts=200_000)
    json.dumps(limits.__dict__)  # plain data, reported by /health


def test_model_version_prefers_the_training_finish_time(tmp_path):
    from sentence_mtl.serve import model_version

    (tmp_path / "weights.bin").write_bytes(b"abc")
    hashed = model_version(tmp_path)
    assert hashed.startswith("sha256:") and model_version(tmp_path) == hashed
    (tmp_path / "weights.bin").write_bytes(b"abd")
    assert model_version(tmp_path) != hashed
    (tmp_path / "training_summary.json").write_text(json.dumps({"finished": "2025-01-02 03:04:05"}))
    assert model_version(tmp_path) == "2025-01-02 03:04:05"


def test_app_factory_from_environment(model_dirs, monkeypatch):
    from sentence_mtl.serve import create_app_from_env

    monkeypatch.setenv("SENTENCE_MTL_MULTITASK_MODEL", str(model_dirs[0]))
    monkeypatch.setenv("SENTENCE_MTL_RETRIEVAL_MODEL", str(model_dirs[1]))
    monkeypatch.setenv("SENTENCE_MTL_MAX_TEXTS", "3")
    assert create_app_from_env().state.service.limits.max_texts == 3
