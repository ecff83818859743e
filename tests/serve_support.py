"""Helpers shared by the service tests and ``benchmarks/serve_soak.py``: tiny random models with
the service's folder layout, and a real ``sentence-mtl serve`` subprocess on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quiet_env(**extra) -> dict:
    """One thread per server: other jobs may share this machine."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", **extra}


def build_tiny_bert(path: Path, layers: int = 2) -> Path:
    """A 32-wide BERT of ``layers`` blocks with MiniLM's tokenizer and random weights
    (``tiny_model_dir`` builds the 2-block one)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sentence_mtl.config import DEFAULT_MODEL
    from sentence_mtl.encoder import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)


def build_service_models(root: Path, bert_dir) -> tuple[Path, Path]:
    """``(multitask, retrieval)`` folders under ``root``, built on ``bert_dir``."""
    from sentence_mtl.encoder import SentenceEncoder
    from sentence_mtl.multitask import MultiTaskModel

    root = Path(root)
    # max_seq_length 128: the tiny BERT has 128 positions (its tokenizer would allow 512)
    MultiTaskModel.from_encoder_name(str(bert_dir), ["topic", "sentiment"], max_seq_length=128).save_pretrained(
        root / "multitask")
    SentenceEncoder.from_pretrained(str(bert_dir), max_seq_length=128).save_pretrained(root / "retrieval")
    return root / "multitask", root / "retrieval"


@contextmanager
def running_server(multitask, retrieval, log_path: Path, env: dict | None = None, args=(), timeout: float = 120,
                   cwd=None):
    """Yields ``(base_url, process)`` of a ``python -m sentence_mtl.cli serve`` subprocess on
    127.0.0.1, started in ``cwd``; stops it afterwards. ``retrieval`` None: no --retrieval-model
    (the service chooses). Raises RuntimeError (with the log) if it does not come up."""
    port = free_port()
    retrieval_args = ["--retrieval-model", str(retrieval)] if retrieval is not None else []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentence_mtl.cli", "serve", "--port", str(port),
             "--multitask-model", str(multitask), *retrieval_args, *args],
            stdout=log, stderr=subprocess.STDOUT, env=quiet_env(**(env or {})), cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}:\n{Path(log_path).read_text()}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /health within {timeout} s:\n"
                                   f"{Path(log_path).read_text()}")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def raw_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` on a fresh socket and read until the server closes or ``timeout`` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_until_closed(s, timeout)


def read_until_closed(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


def stream_chunks_until_answered(sock: socket.socket, path: str, limit: int, chunk_size: int = 65536,
                                 poll: float = 0.05) -> tuple[bytes, int]:
    """POST a chunked body of ``chunk_size`` pieces until the server answers or ``limit`` bytes
    are sent; returns ``(answer so far, bytes sent)``. Leaves the connection open."""
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    sock.settimeout(poll)
    chunk, sent, answer = b"x" * chunk_size, 0, b""
    while b"\r\n\r\n" not in answer and sent < limit:
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sent += len(chunk)
        try:
            answer += sock.recv(65536)
        except socket.timeout:
            pass
    return answer, sent


def status_of(response: bytes) -> int | None:
    """The status code of a raw HTTP/1.1 response, or None if there is none."""
    line = response.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[0].startswith(b"HTTP/") else None
