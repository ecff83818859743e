"""Checkpoints: a planted pickle never runs, a corrupt or mismatched checkpoint is one clear
error line with exit 2, a non-finite loss stops the run, and a run killed between the two
renames of a checkpoint write resumes instead of starting over."""

import json
import os
import pickle
import random
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_support import cli
from sentence_mtl.checkpoint import (CheckpointError, atomic_dir, load_state, recover_dir, save_state,
                                     verify_dir, write_manifest)
from sentence_mtl.config import SAMPLE_DATA_DIR
from sentence_mtl.data import DataSource
from sentence_mtl.training import StopTraining, TrainConfig, Trainer, load_training_data

CONFIG = {"tasks": ["topic", "sentiment"], "epochs": 2, "batch_size": 8, "max_seq_length": 16, "log_every": 1,
          "early_stopping_patience": None, "encoder_lr": 1e-3, "head_lr": 1e-2}
LAYER_NORM = "objective/model.encoder.backbone.embeddings.LayerNorm.weight"


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit 2, no traceback, the error on stderr's last line (tqdm may draw its bar above it)."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, tiny_model_dir):
    """A run on the sample data killed one step into its second epoch: its checkpoint is the
    end of epoch one. Tests copy it (``run_copy``) and resume the copy through the CLI."""
    root = tmp_path_factory.mktemp("killed")
    config_path = root / "config.json"
    config_path.write_text(json.dumps({**CONFIG, "model": tiny_model_dir, "output_dir": str(root / "run")}))
    config = TrainConfig.from_file(config_path)
    sources, val = load_training_data(config, DataSource.resolve(str(SAMPLE_DATA_DIR)))

    def kill(trainer, step):
        if step == trainer.steps_per_epoch + 1:
            raise StopTraining

    with pytest.raises(StopTraining):
        Trainer(config, sources, val, show_progress=False, step_callback=kill).run()
    assert (root / "run" / "checkpoint" / "manifest.json").is_file()
    return config_path, root / "run"


@pytest.fixture
def run_copy(killed_run, tmp_path):
    config_path, run = killed_run
    shutil.copytree(run, tmp_path / "run")
    return config_path, tmp_path / "run"


def resume(config_path, run, *extra):
    return cli("train", "--config", str(config_path), "--data-dir", str(SAMPLE_DATA_DIR),
               "--output-dir", str(run), *extra)


def flip_bit(path: Path, tensor: str, bit: int = 30) -> None:
    """Flip one bit of the first float32 of ``tensor`` in a safetensors file (bit 30: exponent)."""
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    start = 8 + header_len + json.loads(data[8:8 + header_len])[tensor]["data_offsets"][0]
    data[start + bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- no code from a checkpoint


class Planted:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_planted_pickle_never_runs(run_copy, tmp_path):
    config_path, run = run_copy
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state": Planted(marker)})
    pickle.loads(payload)  # the plant is live: unpickling it runs the command
    assert marker.exists()
    marker.unlink()

    shutil.rmtree(run / "checkpoint")
    (run / "checkpoint").mkdir()
    (run / "checkpoint" / "state.pt").write_bytes(payload)  # the checkpoint format this replaced
    result = resume(config_path, run)
    assert_one_line_error(result, str(run / "checkpoint"), "manifest.json", "--restart")
    assert not marker.exists()


def test_pickle_behind_a_forged_manifest_is_not_loaded(tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "state.safetensors").write_bytes(pickle.dumps(Planted(marker)))
    (checkpoint / "state.json").write_text("{}")
    write_manifest(checkpoint)  # checksums prove integrity, not origin: the loader must still be safe
    with pytest.raises(CheckpointError, match="unreadable"):
        load_state(checkpoint)
    assert not marker.exists()


# ---------------------------------------------------------------- corrupt and mismatched checkpoints


def test_flipped_bit_is_refused(run_copy):
    config_path, run = run_copy
    flip_bit(run / "checkpoint" / "state.safetensors", LAYER_NORM)
    result = resume(config_path, run)
    assert_one_line_error(result, "corrupt", "state.safetensors", "--restart")


def test_non_finite_loss_stops_the_run(run_copy):
    """The same flipped bit with a matching checksum (corrupted before it was written): the
    loss is NaN from the first step, and the run stops there instead of training on NaN."""
    config_path, run = run_copy
    flip_bit(run / "checkpoint" / "state.safetensors", LAYER_NORM)
    (run / "checkpoint" / "manifest.json").unlink()
    write_manifest(run / "checkpoint")
    step = json.loads((run / "checkpoint" / "state.json").read_text())["trainer"]["global_step"] + 1
    result = resume(config_path, run)
    line = assert_one_line_error(result, f"step {step} ", "not finite")
    assert re.search(r"task losses here: (topic|sentiment)=nan", line), line

    def reject(token):
        raise AssertionError(f"non-standard JSON token {token} in log.jsonl")
    log = [json.loads(x, parse_constant=reject) for x in (run / "log.jsonl").read_text().splitlines()]
    assert max(e["step"] for e in log) < step


@pytest.mark.parametrize("key, value, expected", [("global_step", "many", "an integer >= 0"),
                                                  ("best_metric", None, "a number"),
                                                  ("stopped_early", 1, "true or false")])
def test_a_checkpoint_counter_of_the_wrong_type_is_refused(run_copy, key, value, expected):
    """Checked like a config: a checksum rewritten to match proves integrity, not sense."""
    config_path, run = run_copy
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    state["trainer"][key] = value
    (run / "checkpoint" / "state.json").write_text(json.dumps(state))
    (run / "checkpoint" / "manifest.json").unlink()
    write_manifest(run / "checkpoint")
    assert_one_line_error(resume(config_path, run), f"trainer.{key} must be {expected}", "--restart")


def test_a_second_trainer_on_the_same_folder_is_refused(run_copy):
    """The first holds output_dir/.lock (here: this process, as a running trainer would)."""
    from sentence_mtl.io import folder_lock

    config_path, run = run_copy
    log_before = (run / "log.jsonl").read_text()
    with folder_lock(run, "trainer"):
        result = resume(config_path, run)
    assert_one_line_error(result, f"{run} is in use by another trainer (pid {os.getpid()})")
    assert (run / "log.jsonl").read_text() == log_before  # nothing written twice


def test_checkpoint_of_another_config_is_refused(run_copy, tmp_path):
    config_path, run = run_copy
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**json.loads(config_path.read_text()), "epochs": 3}))
    assert_one_line_error(resume(other, run), "different config", "epochs: 2 there, 3 now", "--restart")


def test_checkpoint_of_another_model_shape_is_refused(run_copy, tmp_path, tiny_model_dir):
    """The config names the same model folder, but the model in it is now wider."""
    from transformers import BertConfig, BertModel

    config_path, run = run_copy
    wider = tmp_path / "wider-model"
    shutil.copytree(tiny_model_dir, wider)
    config = BertConfig.from_pretrained(tiny_model_dir)
    config.hidden_size = 48
    BertModel(config).save_pretrained(wider)
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    state["config"]["model"] = str(wider)
    (run / "checkpoint" / "state.json").write_text(json.dumps(state))
    (run / "checkpoint" / "manifest.json").unlink()
    write_manifest(run / "checkpoint")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(config_path.read_text()), "model": str(wider)}))
    assert_one_line_error(resume(config, run), "does not fit this model", "size mismatch", "--restart")


def _saved(tmp_path, name="checkpoint", value=1.0) -> Path:
    target = tmp_path / name
    atomic_dir(target, lambda tmp: save_state(tmp, {"weight": torch.full((3,), value)}))
    return target


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "state.safetensors").write_bytes((d / "state.safetensors").read_bytes()[:-5]), "corrupt"),
    (lambda d: (d / "state.json").unlink(), "state.json is missing"),
    (lambda d: (d / "manifest.json").write_text("{not json"), "manifest.json is unreadable"),
    (lambda d: (d / "manifest.json").write_text('{"format": 1, "sha256": {"../x": "0"}}'), "unreadable"),
    (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
])
def test_damaged_checkpoint_names_the_problem(tmp_path, damage, message):
    checkpoint = _saved(tmp_path)
    damage(checkpoint)
    with pytest.raises(CheckpointError, match=re.escape(message)) as error:
        load_state(checkpoint)
    assert "--restart" in str(error.value) and "\n" not in str(error.value)


def test_state_round_trip_keeps_types_exactly(tmp_path):
    state = {"optimizer": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3, dtype=torch.bfloat16)}},
             "groups": [{"betas": (0.9, 0.999), "params": [0, 1]}], "best": -float("inf"),
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(legacy=False),
                     "python": random.getstate()}, "none": None, "flag": True}
    atomic_dir(tmp_path / "c", lambda tmp: save_state(tmp, state))
    loaded = load_state(tmp_path / "c")
    assert list(loaded["optimizer"]) == [0] and torch.equal(loaded["optimizer"][0]["exp_avg"],
                                                            state["optimizer"][0]["exp_avg"])
    assert loaded["groups"] == state["groups"] and loaded["best"] == -float("inf")
    assert loaded["rng"]["python"] == state["rng"]["python"]
    assert torch.equal(loaded["rng"]["torch"], state["rng"]["torch"])
    assert np.array_equal(loaded["rng"]["numpy"]["state"]["key"], state["rng"]["numpy"]["state"]["key"])
    assert (loaded["none"], loaded["flag"]) == (None, True)
    assert "pickle" not in (tmp_path / "c" / "state.json").read_text()


# ---------------------------------------------------------------- a kill between the two renames


def test_recover_between_renames_prefers_the_newer_complete_copy(tmp_path):
    target = _saved(tmp_path, value=1.0)
    _saved(tmp_path, ".checkpoint.tmp", value=2.0)  # the new copy, complete with its manifest
    target.rename(tmp_path / ".checkpoint.old")  # ...killed here, before the second rename
    assert recover_dir(target)
    assert float(load_state(target)["weight"][0]) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_recover_falls_back_to_the_old_copy(tmp_path):
    target = _saved(tmp_path, value=1.0)
    half = _saved(tmp_path, ".checkpoint.tmp", value=2.0)
    (half / "manifest.json").unlink()  # incomplete
    target.rename(tmp_path / ".checkpoint.old")
    assert recover_dir(target)
    assert float(load_state(target)["weight"][0]) == 1.0
    assert not recover_dir(target)  # nothing to do once the target is back


def test_an_unverifiable_old_copy_is_an_error_and_left_alone(tmp_path):
    """A ``.old`` copy means a checkpoint existed: starting over silently would lose its steps."""
    old = _saved(tmp_path, ".checkpoint.old")
    flip_bit(old / "state.safetensors", "weight")
    with pytest.raises(CheckpointError, match=r"\.checkpoint\.old.*--restart"):
        recover_dir(tmp_path / "checkpoint")
    assert old.exists() and not (tmp_path / "checkpoint").exists()


def test_an_incomplete_first_save_is_nothing_to_recover(tmp_path):
    half = _saved(tmp_path, ".checkpoint.tmp")
    (half / "manifest.json").unlink()  # killed while writing the very first checkpoint
    assert not recover_dir(tmp_path / "checkpoint")


def test_a_run_whose_only_copy_is_corrupt_is_refused_not_restarted(run_copy):
    config_path, run = run_copy
    (run / "checkpoint").rename(run / ".checkpoint.old")  # killed between the renames...
    flip_bit(run / ".checkpoint.old" / "state.safetensors", LAYER_NORM)  # ...and the copy then damaged
    result = resume(config_path, run)
    assert_one_line_error(result, ".checkpoint.old", "--restart")
    assert not (run / "checkpoint").exists()


def test_atomic_dir_replaces_despite_a_stale_old_copy(tmp_path):
    target = _saved(tmp_path, value=1.0)
    _saved(tmp_path, ".checkpoint.old", value=0.0)  # left by a kill after the second rename
    _saved(tmp_path, value=3.0)
    assert float(load_state(target)["weight"][0]) == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_run_killed_between_renames_resumes(run_copy):
    config_path, run = run_copy
    (run / "checkpoint").rename(run / ".checkpoint.old")  # the only good copy left
    config = TrainConfig.from_file(config_path)
    config.output_dir = str(run)
    sources, val = load_training_data(config, DataSource.resolve(str(SAMPLE_DATA_DIR)))
    steps = []
    trainer = Trainer(config, sources, val, show_progress=False, step_callback=lambda t, step: steps.append(step))
    _, log = trainer.run()
    assert steps[0] == trainer.steps_per_epoch + 1, "restarted from step 0 instead of resuming"
    assert steps[-1] == trainer.total_steps
    assert len([e for e in log if e["type"] == "eval"]) == 2  # the first from before the kill
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
