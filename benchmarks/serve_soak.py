"""Soak test of ``sentence-mtl serve``: ordinary load plus one abusive client, against a real server.

Run::

    python benchmarks/serve_soak.py [--clients 32] [--requests 20] [--models tiny|trained]

It starts the server as a subprocess on a free 127.0.0.1 port (the trained models in ``models/``
when they exist, else tiny random ones built in a temporary folder: ``--models`` forces either),
warms it up, then runs, at the same time:

* ``--clients`` threads, each sending ``--requests`` mixed requests (``/embed``, ``/predict``,
  ``/similar``, ``/health``) one after another; every answer must be the expected 200;
* one abusive client sending one abusive request at a time, in turn: a body declared over the
  cap, a chunked body that never ends, a list of 1.6 million empty strings (6.4 MB, under the
  cap), an object of 600,000 unknown keys, half-sent headers held open, 200 half-open connections
  beside one ordinary request (which must get 200), an unfinished body, a lone surrogate, 8 MB
  bodies of 2.8 million empty arrays and of 1.7 million ``[[]]``, and four slow readers (each
  pipelines ~2 MB ``/similar`` answers and never reads them); each abusive request must be refused
  (4xx, or the connection dropped by the server's timeouts);
* a monitor polling ``GET /health`` every 50 ms and sampling the server's RSS.

Then, with four slow readers connected again, it sends the server SIGTERM and times its exit
(target: within ``shutdown_timeout`` + 10 s, the documented bound; ``shutdown_timeout`` is 1 s here).

It prints p50/p95/max of ``/health`` over the whole run (target p95 < 1 s) and the server's RSS
before and after (target: back within 20% of its start), each with its ratio to the target,
and writes them to ``results/serve_soak.json``. It exits 1 if a target is missed or an
ordinary request failed. Bounded: the run stops after ``--max-seconds``; only 127.0.0.1 is used.
The server's header, body and send timeouts are shortened to ``--timeouts`` seconds so that the
held connections are dropped within the run.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tiny-model builder and server runner the tests use

from serve_support import (build_service_models, build_tiny_bert, read_until_closed,  # noqa: E402
                           running_server, stream_chunks_until_answered)

from sentence_mtl.io import write_json  # noqa: E402

SENTENCES = ["Stocks rallied after the earnings report.", "What a wonderful, moving film!",
             "The home team won the final in extra time.", "Oil prices fell for a third day.",
             "The service was slow and the food was cold.", "Scientists found water ice on the moon."]
HEALTH_TARGET_S = 1.0
SHUTDOWN_TIMEOUT = 1  # the server's, for the SIGTERM measurement
SHUTDOWN_ALLOWANCE = 10  # documented: connections aborted at shutdown_timeout, work cancelled 10 s later
# 256 documents of 2000 four-byte characters: a /similar answer of ~2 MB that echoes them
BIG_SIMILAR = json.dumps({"query": "q", "documents": ["\U0001f600" * 2000] * 256, "top_k": 256},
                         ensure_ascii=False).encode()
RSS_TARGET = 1.2  # end RSS / start RSS


def ordinary_request(client: httpx.Client, i: int, j: int) -> str | None:
    """One of four requests, chosen by (client, request); None if the answer is right, else why not."""
    texts = [SENTENCES[(i + j + k) % len(SENTENCES)] for k in range(1 + (i + j) % 4)]
    kind = (i + j) % 4
    if kind == 0:
        r = client.post("/embed", json={"texts": texts})
        ok = r.status_code == 200 and len(r.json()["vectors"]) == len(texts)
    elif kind == 1:
        r = client.post("/predict", json={"texts": texts})
        ok = r.status_code == 200 and len(r.json()["predictions"]) == len(texts)
    elif kind == 2:
        r = client.post("/similar", json={"query": texts[0], "documents": SENTENCES, "top_k": 3})
        ok = r.status_code == 200 and len(r.json()["results"]) == 3
    else:
        r = client.get("/health")
        ok = r.status_code == 200
    return None if ok else f"{r.request.method} {r.request.url.path}: HTTP {r.status_code} {r.text[:120]}"


def _head(path: str, extra: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


def slow_readers(port: int, n: int = 4, pipelined: int = 4) -> list[socket.socket]:
    """``n`` connections, each pipelining ``pipelined`` big /similar requests and never reading."""
    head = (f"POST /similar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BIG_SIMILAR)}\r\n\r\n").encode()
    held = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, set before connecting
        s.connect(("127.0.0.1", port))
        threading.Thread(target=_send_quietly, args=(s, (head + BIG_SIMILAR) * pipelined), daemon=True).start()
        held.append(s)
    return held


def _send_quietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:  # the server closed the connection
        pass


def _closed_by_server(s: socket.socket, timeout: float) -> bool:
    """Drain what the server sent until it closes (True) or ``timeout`` passes (False)."""
    s.settimeout(timeout)
    try:
        while s.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def abusive_requests(port: int, max_body: int, wait: float):
    """(name, function) pairs; each function sends one abusive request and returns its outcome."""
    def raw(data: bytes) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
            s.sendall(data)
            answer = read_until_closed(s, timeout=wait)
        line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
        return line or "closed without an answer"

    def declared_too_large():
        return raw(_head("/predict", f"Content-Length: {max_body + 1}\r\nConnection: close\r\n"))

    def endless_chunks():
        with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
            answer, sent = stream_chunks_until_answered(s, "/embed", 4 * max_body, chunk_size=262144, poll=0.01)
        return answer.split(b"\r\n", 1)[0].decode(errors="replace") + f" after {sent / 1e6:.1f} MB"

    def huge_list():
        body = json.dumps({"texts": [""] * 1_600_000}).encode()
        r = httpx.post(f"http://127.0.0.1:{port}/predict", content=body,
                       headers={"content-type": "application/json"}, timeout=wait)
        return f"HTTP {r.status_code}, {len(r.content)} bytes back for {len(body) / 1e6:.1f} MB sent"

    def slow_headers():
        return raw(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")

    def unfinished_body():
        return raw(_head("/predict", "Content-Length: 1000\r\n") + b'{"texts": ["')

    def surrogate():
        r = httpx.post(f"http://127.0.0.1:{port}/similar", content=rb'{"query": "\ud800", "documents": ["a"]}',
                       headers={"content-type": "application/json"}, timeout=wait)
        return f"HTTP {r.status_code}"

    def unknown_keys():
        body = ("{" + ",".join(f'"k{i}":0' for i in range(600_000)) + "}").encode()
        r = httpx.post(f"http://127.0.0.1:{port}/embed", content=body, headers={"content-type": "application/json"},
                       timeout=wait)
        return f"HTTP {r.status_code}, {len(r.content)} bytes back for an object of 600,000 unknown keys"

    def half_open_flood():
        """200 connections holding half a request head, then one ordinary request beside them."""
        held = [socket.create_connection(("127.0.0.1", port), timeout=wait) for _ in range(200)]
        try:
            for s in held:
                s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=wait)
            return f"HTTP {r.status_code} for /health beside 200 half-open connections"
        finally:
            for s in held:
                s.close()

    def tiny_items(item: str, count: int):
        def send():
            body = ('{"texts":[' + ",".join([item] * count) + "]}").encode()
            r = httpx.post(f"http://127.0.0.1:{port}/embed", content=body,
                           headers={"content-type": "application/json"}, timeout=wait)
            return f"HTTP {r.status_code}, {len(r.content)} bytes back for {len(body) / 1e6:.1f} MB of {item} items"
        return send

    def never_read():
        """Four connections pipelining ~2 MB answers they never read; closed by the send timeout."""
        start, held = time.monotonic(), slow_readers(port)
        try:
            closed = sum(_closed_by_server(s, timeout=wait + 30) for s in held)
            return f"{closed} of {len(held)} closed by the server after {time.monotonic() - start:.1f} s"
        finally:
            for s in held:
                s.close()

    return [("declared_too_large", declared_too_large), ("endless_chunks", endless_chunks),
            ("huge_list", huge_list), ("unknown_keys", unknown_keys), ("slow_headers", slow_headers),
            ("half_open_flood", half_open_flood), ("unfinished_body", unfinished_body), ("surrogate", surrogate),
            ("empty_arrays", tiny_items("[]", 2_790_000)), ("nested_empty_arrays", tiny_items("[[]]", 1_670_000)),
            ("slow_readers", never_read)]


def soak(url: str, pid: int, args) -> dict:
    port = int(url.rsplit(":", 1)[1])
    server = psutil.Process(pid)
    with httpx.Client(base_url=url, timeout=60) as warm:
        for j in range(8):
            ordinary_request(warm, 0, j)
        limits = warm.get("/health").json()["limits"]
    time.sleep(1)
    rss_start = server.memory_info().rss
    health, rss_samples, failures, abuse = [], [rss_start], [], []
    stop, clients_done = threading.Event(), threading.Event()
    deadline = time.monotonic() + args.max_seconds

    def monitor():
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    c.get("/health")
                    health.append(time.perf_counter() - start)
                except httpx.HTTPError as e:
                    health.append(time.perf_counter() - start)
                    failures.append(f"health: {e!r}")
                rss_samples.append(server.memory_info().rss)
                time.sleep(0.05)

    def client(i: int):
        with httpx.Client(base_url=url, timeout=60) as c:
            for j in range(args.requests):
                if time.monotonic() > deadline:
                    failures.append(f"client {i}: stopped at --max-seconds")
                    return
                try:
                    problem = ordinary_request(c, i, j)
                except httpx.HTTPError as e:
                    problem = repr(e)
                if problem:
                    failures.append(f"client {i} request {j}: {problem}")

    def abuser():
        kinds = abusive_requests(port, limits["max_body_bytes"], wait=args.timeouts + 10)
        n = 0
        while not clients_done.is_set() or n < len(kinds):  # every kind at least once
            if time.monotonic() > deadline:
                return
            name, send = kinds[n % len(kinds)]
            start = time.perf_counter()
            try:
                outcome = send()
            except (OSError, httpx.HTTPError) as e:
                outcome = f"client side: {e!r}"
            abuse.append({"kind": name, "outcome": outcome, "seconds": round(time.perf_counter() - start, 3)})
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    watchers = [threading.Thread(target=monitor), threading.Thread(target=abuser)]
    t0 = time.perf_counter()
    for t in watchers + threads:
        t.start()
    for t in threads:
        t.join()
    clients_done.set()
    watchers[1].join()
    wall = time.perf_counter() - t0
    time.sleep(2)  # let the server release what the last requests held
    stop.set()
    watchers[0].join()
    rss_end = server.memory_info().rss
    ms = np.array(health) * 1000
    p95 = float(np.percentile(ms, 95)) / 1000
    return {
        "benchmark": "serve_soak", "clients": args.clients, "requests_per_client": args.requests,
        "ordinary_requests": args.clients * args.requests, "failed_ordinary_requests": len(failures),
        "failures": failures[:20], "wall_seconds": round(wall, 2), "abusive_requests": abuse,
        "health_polls": len(health), "health_p50_s": float(np.percentile(ms, 50)) / 1000, "health_p95_s": p95,
        "health_max_s": float(ms.max()) / 1000, "health_p95_target_s": HEALTH_TARGET_S,
        "health_p95_ratio_to_target": p95 / HEALTH_TARGET_S,
        "rss_start_mb": rss_start / 2**20, "rss_peak_mb": max(rss_samples) / 2**20, "rss_end_mb": rss_end / 2**20,
        "rss_end_over_start": rss_end / rss_start, "rss_target_ratio": RSS_TARGET, "server_limits": limits,
    }


def sigterm_with_slow_readers(url: str, proc) -> dict:
    """SIGTERM once four slow readers hold requests; the seconds until the process has exited."""
    held = slow_readers(int(url.rsplit(":", 1)[1]))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until their answers are computed and waiting to be read
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200 and _held_answers(held):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT + SHUTDOWN_ALLOWANCE + 30)
            seconds = round(time.monotonic() - start, 2)
        except Exception:  # still running: recorded as missed (the caller's context kills it)
            seconds = None
    finally:
        for s in held:
            s.close()
    return {"sigterm_slow_readers": len(held), "sigterm_exit_s": seconds,
            "shutdown_timeout_s": SHUTDOWN_TIMEOUT, "sigterm_target_s": SHUTDOWN_TIMEOUT + SHUTDOWN_ALLOWANCE}


def _held_answers(held: list[socket.socket]) -> bool:
    """Whether every slow reader has answer bytes waiting (peeked, not read)."""
    for s in held:
        s.settimeout(0.01)
        try:
            if not s.recv(1, socket.MSG_PEEK):
                return False
        except (socket.timeout, BlockingIOError):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--models", choices=["auto", "tiny", "trained"], default="auto")
    parser.add_argument("--timeouts", type=int, default=3, help="the server's header and body timeouts, seconds")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop the run after this long")
    parser.add_argument("--output", default=str(REPO / "results" / "serve_soak.json"))
    args = parser.parse_args()

    trained = (REPO / "models/multitask", REPO / "models/retrieval/best")
    use_trained = args.models == "trained" or (args.models == "auto" and all(p.is_dir() for p in trained))
    env = {"SENTENCE_MTL_HEADER_TIMEOUT": str(args.timeouts), "SENTENCE_MTL_BODY_TIMEOUT": str(args.timeouts),
           "SENTENCE_MTL_SEND_TIMEOUT": str(args.timeouts), "SENTENCE_MTL_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)}
    with tempfile.TemporaryDirectory(prefix="serve_soak.") as tmp:
        models = trained if use_trained else build_service_models(Path(tmp), build_tiny_bert(Path(tmp) / "bert"))
        with running_server(*models, Path(tmp) / "server.log", env=env) as (url, proc):
            result = soak(url, proc.pid, args)
            result.update(sigterm_with_slow_readers(url, proc))
        log = (Path(tmp) / "server.log").read_text()
    result["models"] = "trained" if use_trained else "tiny (random weights)"
    result["server_tracebacks"] = log.count("Traceback")
    write_json(args.output, result)

    ok_health = result["health_p95_s"] < HEALTH_TARGET_S
    ok_rss = result["rss_end_over_start"] <= RSS_TARGET
    ok_sigterm = result["sigterm_exit_s"] is not None and result["sigterm_exit_s"] <= result["sigterm_target_s"]
    print(f"{args.clients} clients x {args.requests} mixed requests + 1 abusive client, {result['models']} models, "
          f"{result['wall_seconds']:.1f} s")
    print(f"ordinary requests failed: {result['failed_ordinary_requests']} of {result['ordinary_requests']}")
    for failure in result["failures"][:5]:
        print(f"  {failure}")
    for a in result["abusive_requests"]:
        print(f"  abusive {a['kind']:<19} {a['seconds']:6.2f} s  {a['outcome']}")
    print(f"/health over {result['health_polls']} polls: p50 {result['health_p50_s'] * 1000:.0f} ms, "
          f"p95 {result['health_p95_s'] * 1000:.0f} ms, max {result['health_max_s'] * 1000:.0f} ms; "
          f"p95 / target ({HEALTH_TARGET_S:g} s) = {result['health_p95_ratio_to_target']:.3f} "
          f"{'(met)' if ok_health else '(MISSED)'}")
    print(f"server RSS: start {result['rss_start_mb']:.0f} MB, peak {result['rss_peak_mb']:.0f} MB, "
          f"end {result['rss_end_mb']:.0f} MB; end / start = {result['rss_end_over_start']:.3f} "
          f"(target <= {RSS_TARGET}) {'(met)' if ok_rss else '(MISSED)'}")
    print(f"SIGTERM with {result['sigterm_slow_readers']} slow readers connected: exited in "
          f"{result['sigterm_exit_s']} s (shutdown_timeout {SHUTDOWN_TIMEOUT} s; target <= "
          f"{result['sigterm_target_s']} s) {'(met)' if ok_sigterm else '(MISSED)'}")
    print(f"server log tracebacks: {result['server_tracebacks']}; written to {args.output}")
    return 0 if (ok_health and ok_rss and ok_sigterm and not result["failures"]
                 and not result["server_tracebacks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
