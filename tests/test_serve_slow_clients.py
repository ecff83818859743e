"""The service under clients that hold it by being slow or by sending costly shapes, against a
real ``sentence-mtl serve`` with two request slots, a 6 s send timeout, a 1 s shutdown deadline,
and room for 650 documents: a /similar answer (~5 MB) is then larger than what the sockets'
kernel buffers hold (at most 4 MB), so an unread one keeps its request waiting.

Clients that pipeline requests with multi-megabyte answers and never read them lose their
connection after ``send_timeout``, which frees their slots; ``/health`` answers meanwhile; a body
of millions of empty arrays is refused before parsing; SIGTERM with such a client connected
exits within ``shutdown_timeout``. The last test stops the server.
"""

import json
import signal
import socket
import threading
import time

import httpx
import pytest
from serve_support import build_service_models, raw_request, read_until_closed, running_server, status_of

SEND_TIMEOUT = 6
SHUTDOWN_TIMEOUT = 1
MAX_CONCURRENCY = 2
LIMITS_ENV = {"SENTENCE_MTL_MAX_CONCURRENCY": str(MAX_CONCURRENCY), "SENTENCE_MTL_SEND_TIMEOUT": str(SEND_TIMEOUT),
              "SENTENCE_MTL_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT), "SENTENCE_MTL_MAX_DOCUMENTS": "650"}
# 650 documents of 2000 four-byte characters: each /similar answer echoes ~5.2 MB of them
BIG_SIMILAR = json.dumps({"query": "q", "documents": ["\U0001f600" * 2000] * 650, "top_k": 650},
                         ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """(base URL, port, process, log path)."""
    models = build_service_models(tmp_path_factory.mktemp("slow-models"), tiny_model_dir)
    log_path = tmp_path_factory.mktemp("slow-log") / "server.log"
    try:
        with running_server(*models, log_path, env=LIMITS_ENV) as (url, proc):
            yield url, int(url.rsplit(":", 1)[1]), proc, log_path
    except RuntimeError as e:
        pytest.fail(str(e))


def _slow_reader(port: int, requests: int = 2) -> socket.socket:
    """A connection that pipelines ``requests`` big /similar requests and never reads: the first
    answer waits in the server's buffers, and the next request's answer waits for it, holding
    its request slot."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    s.connect(("127.0.0.1", port))
    head = (f"POST /similar HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BIG_SIMILAR)}\r\n\r\n").encode()
    threading.Thread(target=lambda: _send_quietly(s, (head + BIG_SIMILAR) * requests), daemon=True).start()
    return s


def _send_quietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:  # the server closed the connection: what it should do
        pass


def _answer_waiting(s: socket.socket) -> bool:
    """Whether the server has begun sending this connection its answer (peeked, not read)."""
    s.settimeout(0.05)
    try:
        return bool(s.recv(1, socket.MSG_PEEK))
    except (socket.timeout, BlockingIOError):
        return False


def _similar_status(url: str) -> int:
    return httpx.post(url + "/similar", json={"query": "q", "documents": ["a"]}, timeout=30).status_code


def test_clients_that_never_read_lose_their_slots_and_health_answers_meanwhile(server):
    url, port, _, _ = server
    held = [_slow_reader(port) for _ in range(MAX_CONCURRENCY)]
    try:
        deadline = time.monotonic() + 60
        while _similar_status(url) != 503:  # every slot held by an unread answer
            assert time.monotonic() < deadline, "the slow readers never filled the slots"
            time.sleep(0.2)
        full_at = time.monotonic()
        health = httpx.get(url + "/health", timeout=5)
        assert health.status_code == 200, health.text  # /health does not queue behind the work
        while _similar_status(url) == 503:
            assert time.monotonic() - full_at < SEND_TIMEOUT + 10, "slots were never freed"
            time.sleep(0.3)
        for s in held:  # their connections were closed by the server
            s.settimeout(SEND_TIMEOUT + 10)
            try:
                while s.recv(1 << 20):
                    pass
            except ConnectionResetError:
                pass
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize("item, count", [("[]", 2_790_000), ("[[]]", 1_670_000), ("0", 4_190_000)])
def test_a_body_of_millions_of_tiny_items_is_refused_before_parsing_without_stalling_health(server, item, count):
    url = server[0]
    body = ('{"texts":[' + ",".join([item] * count) + "]}").encode()
    assert len(body) < 8 * 1024 * 1024
    answers, health_seconds, done = [], [], threading.Event()

    def abuse():
        with httpx.Client(base_url=url, timeout=60) as c:
            for _ in range(2):
                r = c.post("/embed", content=body, headers={"content-type": "application/json"})
                answers.append((r.status_code, r.json()))
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
    for status, answer in answers:
        assert status == 422, answer
        assert "(max_body_items)" in answer["error"] and answer["detail"]["items"] > 100_000
    assert max(health_seconds) < 1, max(health_seconds)


@pytest.mark.parametrize("body", [rb'{"texts": "\ud800"}', rb'{"query": "q", "documents": "\ud800"}',
                                  rb'{"texts": "ok\udfff"}'])
def test_a_lone_surrogate_where_a_list_belongs_is_a_422(server, body):
    path = "/similar" if b"documents" in body else "/embed"
    r = httpx.post(server[0] + path, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422, r.text
    assert "must be a JSON array of strings" in r.json()["error"]


@pytest.mark.parametrize("head", [
    b"GARBAGE\r\n\r\n",
    b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
])
def test_requests_the_protocol_cannot_parse_get_a_json_400(server, head):
    answer = raw_request(server[1], head, timeout=10)
    assert status_of(answer) == 400, answer[:200]
    headers, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in headers.lower()
    assert "could not be parsed as HTTP/1.1" in json.loads(body)["error"]


def test_sigterm_with_clients_that_never_read_exits_within_the_shutdown_timeout(server):
    _, port, proc, log_path = server
    held = [_slow_reader(port) for _ in range(MAX_CONCURRENCY)]
    try:
        deadline = time.monotonic() + 60
        while not all(_answer_waiting(s) for s in held):  # answers sent that nobody reads
            assert time.monotonic() < deadline, "no answer reached the slow readers"
            time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=SEND_TIMEOUT + 20)
        # the deadline, then at most the computation running at that moment (seconds here)
        assert time.monotonic() - start < SHUTDOWN_TIMEOUT + 8, time.monotonic() - start
        assert "Traceback" not in log_path.read_text()
    finally:
        for s in held:
            s.close()
