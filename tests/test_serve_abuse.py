"""The service under careless or hostile clients, against a real uvicorn server (raw sockets
where a well-behaved HTTP client cannot misbehave enough).

Short timeouts (2 s) and small budgets keep every test to a few seconds: one huge list of empty
strings must cost one error, not one per item, and must not stall ``/health``; half-sent
headers, unfinished bodies and never-ending chunked bodies are cut off; the bodies held at once
are bounded; a lone surrogate is a 422 on every POST endpoint.
"""

import json
import socket
import threading
import time

import httpx
import pytest
from serve_support import (build_service_models, raw_request, read_until_closed, running_server, status_of,
                           stream_chunks_until_answered)

TIMEOUT = 2  # header and body timeouts of this module's server, seconds
MAX_BODY = 1_000_000
MAX_CONCURRENCY = 60
MAX_CONNECTIONS = 120
LIMITS_ENV = {"SENTENCE_MTL_MAX_TEXTS": "8", "SENTENCE_MTL_MAX_DOCUMENTS": "10",
              "SENTENCE_MTL_MAX_BODY_BYTES": str(MAX_BODY), "SENTENCE_MTL_MAX_BUFFERED_BYTES": str(2 * MAX_BODY),
              "SENTENCE_MTL_MAX_CONCURRENCY": str(MAX_CONCURRENCY), "SENTENCE_MTL_HEADER_TIMEOUT": str(TIMEOUT),
              "SENTENCE_MTL_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
              "SENTENCE_MTL_BODY_TIMEOUT": str(TIMEOUT)}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """(base URL, port, log path) of a server with this module's limits."""
    models = build_service_models(tmp_path_factory.mktemp("abuse-models"), tiny_model_dir)
    log_path = tmp_path_factory.mktemp("abuse-log") / "server.log"
    try:
        with running_server(*models, log_path, env=LIMITS_ENV) as (url, _):
            yield url, int(url.rsplit(":", 1)[1]), log_path
    except RuntimeError as e:
        pytest.fail(str(e))


def _health_ok(url: str) -> bool:
    return httpx.get(url + "/health", timeout=5).status_code == 200


def _post_head(path: str, length: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


# --------------------------------------------------------------------------- one request must not stall the server


def abuse_while_polling_health(url: str, paths, body: bytes) -> tuple[list, list[float]]:
    """POST ``body`` to each of ``paths`` in turn while another client polls /health; the abusive
    answers (status, size, seconds, JSON) and the seconds of every /health answer."""
    answers, health_seconds, done = [], [], threading.Event()

    def abuse():
        with httpx.Client(base_url=url, timeout=60) as c:
            for path in paths:
                start = time.perf_counter()
                r = c.post(path, content=body, headers={"content-type": "application/json"})
                answers.append((r.status_code, len(r.content), time.perf_counter() - start, r.json()))
        done.set()

    thread = threading.Thread(target=abuse)
    thread.start()
    with httpx.Client(base_url=url, timeout=60) as c:
        while not done.is_set():
            start = time.perf_counter()
            assert c.get("/health").status_code == 200
            health_seconds.append(time.perf_counter() - start)
            time.sleep(0.02)
    thread.join()
    return answers, health_seconds


def test_a_huge_list_of_empty_strings_costs_one_error_and_does_not_stall_health(server):
    """Over max_body_items: refused on a count of the raw bytes, before anything parses it."""
    body = json.dumps({"texts": [""] * 200_000}).encode()  # 25,000 x max_texts, under the body cap
    assert len(body) < MAX_BODY
    answers, health_seconds = abuse_while_polling_health(server[0], ("/predict", "/embed", "/predict"), body)
    for status, size, seconds, answer in answers:
        assert status == 422 and size < 2000, (status, size)
        assert seconds < 3, seconds
        assert "holds 200001 or more items" in answer["error"]  # counted before parsing
        assert answer["detail"] == {"items": 200001, "max_body_items": 100_000}
    assert max(health_seconds) < 1, max(health_seconds)


@pytest.mark.parametrize("path", ["/embed", "/predict", "/similar"])
def test_an_object_of_unknown_keys_is_refused_before_validation_without_stalling_health(server, path):
    """Each unknown key of a request object used to cost a validation error built on the event loop:
    an object of many thousand keys under the body cap held /health for seconds."""
    body = ("{" + ",".join(f'"k{i}":0' for i in range(90_000)) + "}").encode()
    assert len(body) < MAX_BODY
    answers, health_seconds = abuse_while_polling_health(server[0], (path,) * 3, body)
    for status, size, seconds, answer in answers:
        assert status == 422 and size < 1000, (status, size)
        assert "90000 unknown fields" in answer["error"] and "k1" not in json.dumps(answer)  # no input echoed
    assert max(s for *_, s, _ in answers) < 1, answers
    assert max(health_seconds) < 1, max(health_seconds)


@pytest.mark.parametrize("path, body, where", [
    ("/embed", {"texts": ["\u200b"]}, "texts[0]"),
    ("/predict", {"texts": ["ok", "\u0000"]}, "texts[1]"),
    ("/predict", {"texts": ["\u0301\u200d"]}, "texts[0]"),
    ("/similar", {"query": "\u200b\u200c", "documents": ["a"]}, "query"),
    ("/similar", {"query": "q", "documents": ["a", "b", "\ufeff\u0000"]}, "documents[2]"),
])
def test_text_that_tokenizes_to_nothing_is_a_422_naming_where(server, path, body, where):
    """Zero-width, NUL and lone combining characters pass a whitespace check but the tokenizer
    drops them: the model would see an empty text and answer with the same vector for all."""
    r = httpx.post(server[0] + path, json=body, timeout=30)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert f"'{where}' contains nothing the model reads" in error, error


def test_error_detail_is_capped(server):
    payload = {"query": "", "documents": [""] * 10}  # 11 problems
    answer = httpx.post(server[0] + "/similar", json=payload, timeout=30).json()
    assert answer["detail"]["count"] == 11 and len(answer["detail"]["errors"]) == 10
    assert "and 10 more problem(s)" in answer["error"]


@pytest.mark.parametrize("path, body", [
    ("/embed", rb'{"texts": ["\ud800"]}'),
    ("/predict", rb'{"texts": ["ok", "a\udfffb"]}'),
    ("/similar", rb'{"query": "\ud800", "documents": ["a"]}'),
    ("/similar", rb'{"query": "q", "documents": ["a", "\udbff"]}'),
])
def test_a_lone_surrogate_is_a_422_on_every_post_endpoint(server, path, body):
    r = httpx.post(server[0] + path, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422, r.text
    assert "surrogate" in r.json()["error"]


# --------------------------------------------------------------------------- connections and uploads are bounded


def test_half_sent_headers_are_dropped_after_the_header_timeout(server):
    url, port, _ = server
    held = []
    try:
        for i in range(50):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: localhost\r\n" if i % 2 else b"")  # half a head, or nothing
            held.append(s)
        time.sleep(0.3)
        assert _health_ok(url)
        # more half-open connections than requests may run at once: they are not requests, and
        # used to fill uvicorn's limit_concurrency, turning everyone away until they timed out
        held += [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(MAX_CONCURRENCY - 50 + 20)]
        time.sleep(0.3)
        assert _health_ok(url)
        start = time.monotonic()
        answers = [read_until_closed(s, timeout=TIMEOUT + 5) for s in held]
        assert time.monotonic() - start < TIMEOUT + 3
        assert all(status_of(a) == 408 for a in answers), {a[:40] for a in answers}
        assert b"not complete within 2 s" in answers[0]
        assert _health_ok(url)
    finally:
        for s in held:
            s.close()


def test_connections_over_the_cap_get_a_json_503_and_are_closed(server):
    url, port, _ = server
    held = []
    try:
        held += [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(MAX_CONNECTIONS + 5)]
        time.sleep(0.3)
        answer = raw_request(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n", timeout=5)
        assert status_of(answer) == 503 and b"application/json" in answer and b"retry-after: 1" in answer.lower()
        assert b'"max_connections": 120' in answer
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    assert _health_ok(url)


def test_requests_over_the_concurrency_cap_get_a_json_503(server):
    """Requests whose bodies are still arriving are being handled; past max_concurrency of them,
    the next request is refused at once (JSON, Retry-After) instead of queued."""
    url, port, _ = server
    held = []
    try:
        for _ in range(MAX_CONCURRENCY):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(_post_head("/predict", 100) + b'{"texts": ["a')
            held.append(s)
        time.sleep(0.5)
        r = httpx.post(url + "/predict", json={"texts": ["one more"]}, timeout=5)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert r.json()["detail"] == {"max_concurrency": MAX_CONCURRENCY}
        assert _health_ok(url)  # /health is outside the cap: a full server still answers it
        answers = [read_until_closed(s, timeout=TIMEOUT + 5) for s in held]  # each body times out: 408
        assert all(status_of(a) == 408 for a in answers)
    finally:
        for s in held:
            s.close()
    assert _health_ok(url)


def test_an_unfinished_body_gets_408_after_the_body_timeout(server):
    start = time.monotonic()
    answer = raw_request(server[1], _post_head("/predict", 100) + b'{"texts": ["a', timeout=TIMEOUT + 5)
    assert status_of(answer) == 408 and b"not complete within 2 s" in answer
    assert time.monotonic() - start < TIMEOUT + 3


def test_a_chunked_body_over_the_cap_is_refused_while_streaming_and_then_cut_off(server):
    with socket.create_connection(("127.0.0.1", server[1]), timeout=10) as s:
        answer, sent = stream_chunks_until_answered(s, "/predict", 4 * MAX_BODY)
        assert status_of(answer) == 413, answer[:200]
        assert sent < 3 * MAX_BODY  # refused while streaming, long before the body ends
        # a client that keeps trickling the body it was told is too large is disconnected
        start, closed = time.monotonic(), False
        while time.monotonic() - start < TIMEOUT + 5 and not closed:
            try:
                s.sendall(b"1\r\nx\r\n")
                closed = s.recv(65536) == b""
            except socket.timeout:
                time.sleep(0.2)
            except OSError:
                closed = True
        assert closed and time.monotonic() - start < TIMEOUT + 3


def test_bodies_held_at_once_are_bounded(server):
    """Two nearly complete 900 kB uploads fill the 2 MB budget: a third upload gets 503 with
    Retry-After; once the first two finish, they are answered normally."""
    url, port, _ = server
    payload = b'{"texts": ["held back"]}'
    size = 900_000
    held = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(_post_head("/predict", size, "Connection: close\r\n") + b" " * (size - len(payload))
                      + payload[:-1])
            held.append(s)
        deadline = time.monotonic() + 10
        while True:  # until the server has read both held bodies (at once on an idle machine)
            third = httpx.post(url + "/predict", content=b" " * 300_000 + payload,
                               headers={"content-type": "application/json"}, timeout=10)
            if third.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert third.status_code == 503 and third.headers["retry-after"] == "1"
        assert "too many request bodies at once" in third.json()["error"]
        for s in held:
            s.sendall(payload[-1:])
            answer = read_until_closed(s)
            assert status_of(answer) == 200 and b"held back" in answer, answer[:300]
        assert httpx.post(url + "/predict", content=b" " * 300_000 + payload,
                          headers={"content-type": "application/json"}, timeout=10).status_code == 200
    finally:
        for s in held:
            s.close()


def test_the_server_survived_without_a_traceback(server):
    assert _health_ok(server[0])
    log = server[2].read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
