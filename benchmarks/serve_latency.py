"""Latency and throughput of ``POST /predict`` under concurrent clients, against a real server.

Run::

    python benchmarks/serve_latency.py --multitask-model models/multitask \\
        --retrieval-model models/retrieval/best [--clients 8] [--requests 50] [--texts-per-request 1]

It starts ``sentence-mtl serve`` as a subprocess on a free port (``--url`` measures a server that is
already running instead), waits for ``/health``, sends a few warm-up requests, then runs
``--clients`` threads, each with its own ``httpx`` client sending ``--requests`` requests of
``--texts-per-request`` short sentences, one after another. It prints p50 / p95 / max latency in
ms and requests/s over the whole run, and exits 1 if any request failed (non-200 or wrong
shape). ``--server-threads`` sets the server's torch threads (OMP_NUM_THREADS); by default torch
chooses. The server log goes to a temporary file, printed if the server fails to start.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

import httpx
import numpy as np

SENTENCES = ["Stocks rallied after the earnings report.", "What a wonderful, moving film!",
             "The home team won the final in extra time.", "A new phone was released today.",
             "Oil prices fell for a third day.", "The service was slow and the food was cold.",
             "Scientists found water ice on the moon.", "The talks ended without an agreement."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(args):
    """Yields the base URL of a server subprocess; stops it afterwards."""
    port = _free_port()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    if args.server_threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.server_threads)
    log = tempfile.NamedTemporaryFile("w+", prefix="serve_latency.", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "sentence_mtl.cli", "serve", "--port", str(port),
                             "--multitask-model", args.multitask_model, "--retrieval-model", args.retrieval_model],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + args.start_timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                what = f"exited with {proc.returncode}" if proc.returncode is not None else "did not start in time"
                sys.exit(f"the server {what}; its log:\n{log.read()[-4000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)


def fire(url: str, clients: int, requests: int, texts_per_request: int) -> tuple[list[float], list, float]:
    """(latencies in s, failures, wall seconds) of clients x requests POST /predict calls."""
    latencies, failures = [], []
    lock = threading.Lock()
    start_line = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            start_line.wait()
            for j in range(requests):
                texts = [SENTENCES[(i + j + k) % len(SENTENCES)] for k in range(texts_per_request)]
                t0 = time.perf_counter()
                try:
                    r = client.post("/predict", json={"texts": texts})
                    ok = r.status_code == 200 and len(r.json()["predictions"]) == len(texts)
                    outcome = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except Exception as e:  # noqa: BLE001 - every failure counts
                    outcome = repr(e)
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    if outcome:
                        failures.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, failures, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--multitask-model", default="models/multitask")
    parser.add_argument("--retrieval-model", default="models/retrieval/best")
    parser.add_argument("--url", default=None, help="measure this running server instead of starting one")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5, help="requests sent (and not timed) before the run")
    parser.add_argument("--server-threads", type=int, default=None, help="OMP_NUM_THREADS of the server")
    parser.add_argument("--start-timeout", type=float, default=180)
    args = parser.parse_args()

    @contextmanager
    def given(url):
        yield url

    with (given(args.url) if args.url else running_server(args)) as url:
        for _ in range(args.warmup):
            httpx.post(url + "/predict", json={"texts": SENTENCES[:args.texts_per_request]}, timeout=120)
        health = httpx.get(url + "/health", timeout=10).json()
        latencies, failures, wall = fire(url, args.clients, args.requests, args.texts_per_request)

    ms = np.array(latencies) * 1000
    model = health["models"]["multitask"]
    print(f"POST /predict: {args.clients} clients x {args.requests} requests, {args.texts_per_request} text(s) each; "
          f"multi-task model {model['path']} (version {model['version']})")
    print(f"latency ms: p50 {np.percentile(ms, 50):.1f}  p95 {np.percentile(ms, 95):.1f}  max {ms.max():.1f}")
    print(f"throughput: {len(latencies) / wall:.1f} requests/s ({len(latencies) * args.texts_per_request / wall:.1f} "
          f"texts/s) over {wall:.2f} s")
    print(f"failed: {len(failures)} of {len(latencies)}")
    for failure in failures[:5]:
        print(f"  {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
