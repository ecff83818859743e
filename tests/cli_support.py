"""The real ``sentence-mtl`` command in a subprocess, and the CLI's rule for bad input: exit
status 2 and one ``error:`` line on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys


def cli(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sentence_mtl.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def assert_one_error_line(returncode: int, stderr: str, *fragments: str) -> str:
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]
