"""The training loop in two CPU processes on small data.

`accelerate launch --cpu --num_processes 2` starts a single process in accelerate 1.x (multi-CPU
needs MPI there); `--multi_gpu` starts two through torchrun, and the Trainer's
`Accelerator(cpu=True)` on a GPU-less machine turns that into a gloo MULTI_CPU run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from sentence_mtl.config import SAMPLE_DATA_DIR


def test_two_process_training(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    config = {"model": tiny_model_dir, "tasks": ["topic", "sentiment"], "batch_size": 4, "epochs": 4,
              "encoder_lr": 1e-3, "head_lr": 1e-2, "max_seq_length": 32, "log_every": 1,
              "early_stopping_patience": None, "sampling": "round_robin", "output_dir": str(out)}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "sentence_mtl.cli", "train", "--config", str(config_path), "--data-dir", str(SAMPLE_DATA_DIR)],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    reports = [json.loads((out / f"process_{rank}.json").read_text()) for rank in (0, 1)]
    assert all(r["world_size"] == 2 and r["steps"] > 0 for r in reports)  # both processes trained
    assert reports[0]["steps"] == reports[1]["steps"]
    assert reports[0]["first_batch"] != reports[1]["first_batch"]  # on different batches

    assert (out / "checkpoint" / "manifest.json").is_file()  # one checkpoint, written by one process
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log if e["type"] == "step"]
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    assert len([e for e in log if e["type"] == "eval"]) == 4
