"""The run store: content keys, compute-once, resumable reproductions, and spot checks that catch
a run that does not reproduce."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from sentence_mtl.config import get_profile
from sentence_mtl.experiments import store as store_module
from sentence_mtl.experiments.store import RunStore, StoreMismatch, run_key
from sentence_mtl.results import Recorder


@dataclass(frozen=True)
class Settings:
    lr: float
    steps: int


def recorder() -> Recorder:
    return Recorder("99_store_test", get_profile("smoke"), {"model": "tiny"})


def counting_run(values):
    """A run that records the next of ``values`` and counts how often it was computed."""
    calls = []

    def compute(child):
        calls.append(1)
        child.add(task="topic", dataset="d", strategy="s", metric="accuracy",
                  value=values[min(len(calls) - 1, len(values) - 1)], n_test=10, train_seconds=len(calls))
    return compute, calls


PARTS = {"strategy": Settings(1e-3, 10), "task": "topic", "k": 8, "seed": 0,
         "sample": np.array([3, 1, 4, 1, 5])}


def test_the_key_follows_every_part_of_the_content(monkeypatch):
    key = run_key(PARTS)
    assert run_key(dict(PARTS)) == key
    assert run_key({**PARTS, "strategy": Settings(1e-3, 11)}) != key
    assert run_key({**PARTS, "sample": np.array([3, 1, 4, 1, 6])}) != key
    assert run_key({**PARTS, "seed": 1}) != key
    monkeypatch.setattr(store_module, "STUDY_VERSION", store_module.STUDY_VERSION + 1)
    assert run_key(PARTS) != key


def test_a_value_without_content_cannot_be_keyed():
    with pytest.raises(TypeError, match="cannot fingerprint"):
        run_key({"model": object()})


def test_a_stored_run_is_computed_once(tmp_path):
    store = RunStore(tmp_path)
    compute, calls = counting_run([0.5])
    first, second = recorder(), recorder()
    store.run(first, PARTS, compute)
    RunStore(tmp_path).run(second, PARTS, compute)  # a new process: read from disk
    assert len(calls) == 1
    assert first.records == second.records and first.records[0]["value"] == 0.5
    assert first.records[0]["experiment"] == "99_store_test"


def test_a_read_only_store_names_a_missing_run_and_reads_a_stored_one(tmp_path):
    """Notebook 03 reads the headline grid without training it: a missing run raises NotStored
    (and writes nothing), a stored one is read as usual."""
    from sentence_mtl.experiments.store import NotStored

    store = RunStore(tmp_path)
    store.compute_missing = False
    compute, calls = counting_run([0.5])
    with pytest.raises(NotStored, match="not in the store"):
        store.run(recorder(), PARTS, compute)
    assert not calls and not list(tmp_path.rglob("*.json"))
    RunStore(tmp_path).run(recorder(), PARTS, compute)
    assert [r["value"] for r in store.run(recorder(), PARTS, compute)] == [0.5] and len(calls) == 1


def test_identity_fields_make_a_different_run_and_the_description_does_not(tmp_path):
    """Experiment, profile and data kind identify a run; the notebook's config describes the
    whole grid, so changing it (a new strategy added) recomputes nothing, and reused records
    carry the new description."""
    store = RunStore(tmp_path)
    compute, calls = counting_run([0.5])
    store.run(recorder(), PARTS, compute)
    described = Recorder("99_store_test", get_profile("smoke"), {"model": "another"})
    store.run(described, PARTS, compute)
    assert len(calls) == 1 and described.records[0]["config"] == {"model": "another"}
    store.run(Recorder("99_store_test", get_profile("standard"), {"model": "tiny"}), PARTS, compute)
    store.run(Recorder("99_store_test", get_profile("smoke"), {"model": "tiny"}, is_sample=True), PARTS, compute)
    assert len(calls) == 3


def test_recompute_mode_redoes_old_runs_but_resumes_its_own(tmp_path):
    compute, calls = counting_run([0.5])
    RunStore(tmp_path).run(recorder(), PARTS, compute)
    import time

    since = time.time()
    reproduction = RunStore(tmp_path, mode="recompute", since=since)
    reproduction.run(recorder(), PARTS, compute)
    assert len(calls) == 2  # written before this reproduction began: recomputed
    RunStore(tmp_path, mode="recompute", since=since).run(recorder(), PARTS, compute)
    assert len(calls) == 2  # written by this reproduction before it was killed: resumed


def stored_run(tmp_path):
    """A run in a fresh store, and its record file."""
    compute, calls = counting_run([0.5])
    RunStore(tmp_path).run(recorder(), PARTS, compute)
    return compute, calls, next(tmp_path.rglob("*.json"))


def edit(path, change):
    """Rewrite a record file's JSON through ``change`` (a hand edit: the hash is left as it was)."""
    entry = json.loads(path.read_text())
    change(entry)
    path.write_text(json.dumps(entry))


@pytest.mark.parametrize("damage, why", [
    (lambda p: p.write_text(p.read_text()[:20]), "unreadable"),
    (lambda p: edit(p, lambda e: e["records"][0].update(value=0.99)), "does not match its sha256"),
    (lambda p: edit(p, lambda e: e.update(records=[])), "no records"),
    (lambda p: p.write_text(p.read_text().replace("0.5", "NaN", 1)), "non-finite"),
    (lambda p: edit(p, lambda e: e.pop("sha256")), "carries no sha256"),
])
def test_a_damaged_record_file_is_named_and_never_used(tmp_path, damage, why):
    compute, calls, path = stored_run(tmp_path)
    damage(path)
    with pytest.raises(store_module.DamagedRecord, match=why) as caught:
        RunStore(tmp_path).run(recorder(), PARTS, compute)
    assert str(path) in str(caught.value) and len(calls) == 1
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")], "a temporary file was left"


def test_a_record_copied_under_another_runs_key_is_caught(tmp_path):
    compute, calls, path = stored_run(tmp_path)
    other = {**PARTS, "seed": 1}
    RunStore(tmp_path).run(recorder(), other, compute)
    (copy_target,) = [p for p in tmp_path.rglob("*.json") if p != path]
    copy_target.write_text(path.read_text())  # its own hash is intact: only the key tells
    with pytest.raises(store_module.DamagedRecord, match="copied under another run's name"):
        RunStore(tmp_path).run(recorder(), other, compute)


def test_a_file_written_without_a_hash_can_be_sealed_once_trusted(tmp_path):
    compute, calls, path = stored_run(tmp_path)
    edit(path, lambda e: e.pop("sha256"))
    assert store_module.seal(path) and not store_module.seal(path)
    RunStore(tmp_path).run(recorder(), PARTS, compute)
    assert len(calls) == 1


def test_spot_check_compares_what_was_measured_not_how_the_grid_is_described(tmp_path):
    """A reused record carries today's description (lists in JSON, tuples in a fresh profile):
    the check compares measurements in canonical form, so an untouched store passes."""
    compute, calls = counting_run([0.5, 0.5])
    RunStore(tmp_path).run(Recorder("99_store_test", get_profile("smoke"), {"profile": get_profile("smoke").to_dict()}),
                           PARTS, compute)
    fresh = Recorder("99_store_test", get_profile("smoke"), {"profile": get_profile("smoke").to_dict()})
    checker = RunStore(tmp_path, spot_check=1.0)
    checker.run(fresh, PARTS, compute)
    assert checker.counts["checked"] == 1 and len(calls) == 2


def test_spot_check_fails_loudly_on_a_run_that_does_not_reproduce(tmp_path):
    compute, _ = counting_run([0.5, 0.6])
    RunStore(tmp_path).run(recorder(), PARTS, compute)
    with pytest.raises(StoreMismatch, match="different records.*'value': 0.6 recomputed, 0.5 stored"):
        RunStore(tmp_path, spot_check=1.0).run(recorder(), PARTS, compute)


def test_spot_check_ignores_measured_costs(tmp_path):
    compute, calls = counting_run([0.5, 0.5])  # train_seconds differs between the two computations
    RunStore(tmp_path).run(recorder(), PARTS, compute)
    checker = RunStore(tmp_path, spot_check=1.0)
    checker.run(recorder(), PARTS, compute)
    assert len(calls) == 2 and checker.counts["checked"] == 1


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="SENTENCE_MTL_STORE"):
        RunStore(tmp_path, mode="sometimes")
    with pytest.raises(ValueError, match="spot-check"):
        RunStore(tmp_path, spot_check=2)


def test_a_real_training_run_reproduces_under_spot_check(tmp_path, tiny_model_dir):
    """Heads trained on fixed embeddings, twice from the same seed: identical records."""
    from sentence_mtl import strategy_training as st
    from sentence_mtl import strategies

    rng = np.random.default_rng(0)
    embeddings = {t: rng.normal(size=(32, 32)).astype(np.float32) for t in ("topic", "sentiment")}
    labels = {"topic": rng.integers(0, 4, 32), "sentiment": rng.integers(0, 3, 32)}

    def compute(child):
        model = st.new_model(0, 32, tiny_model_dir)
        log, steps = st.train_heads(model, embeddings, labels, strategies.get("frozen_backbone"), 0)
        child.add(task="topic", dataset="random", strategy="frozen_backbone", metric="final_loss",
                  value=float(np.mean(log.losses[-5:])), n_test=0, steps=steps)

    parts = {"embeddings": embeddings, "labels": labels, "seed": 0}
    RunStore(tmp_path).run(recorder(), parts, compute)
    checker = RunStore(tmp_path, spot_check=1.0)
    checker.run(recorder(), parts, compute)
    assert checker.counts == {"reused": 1, "computed": 0, "checked": 1}


def test_records_live_beside_the_profiles_results_unless_a_folder_is_named(monkeypatch, tmp_path):
    from sentence_mtl.config import REPO_ROOT

    monkeypatch.delenv("SENTENCE_MTL_STORE_DIR", raising=False)
    monkeypatch.setenv("SENTENCE_MTL_PROFILE", "standard")
    assert RunStore().root == REPO_ROOT / "results" / "store"  # committed: a fresh clone re-executes warm
    monkeypatch.setenv("SENTENCE_MTL_PROFILE", "smoke")
    assert RunStore().root == REPO_ROOT / "runs" / "smoke" / "results" / "store"
    monkeypatch.setenv("SENTENCE_MTL_STORE_DIR", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere"


def test_large_parts_are_kept_as_digests_and_still_key_the_run(tmp_path):
    """A run that reads thousands of texts keys on all of them, but its file stays small."""
    compute, calls = counting_run([0.5])
    parts = {"pairs": [f"claim {i} " * 20 for i in range(2000)], "seed": 0}
    RunStore(tmp_path).run(recorder(), parts, compute)
    (path,) = (tmp_path / "99_store_test").glob("*.json")
    assert path.stat().st_size < 5000
    RunStore(tmp_path).run(recorder(), parts, compute)
    RunStore(tmp_path).run(recorder(), {**parts, "pairs": parts["pairs"][:-1]}, compute)
    assert len(calls) == 2


def test_every_study_record_says_whether_it_read_unlabeled_texts(tmp_path):
    """Computed or read back, a freezing-study record carries ``uses_unlabeled`` from its strategy."""
    from sentence_mtl.experiments.freezing import FreezingStudy

    study = FreezingStudy.__new__(FreezingStudy)
    study.store, study.recorder = RunStore(tmp_path), recorder()
    compute, calls = counting_run([0.5])
    assert [r["uses_unlabeled"] for r in study._store(PARTS, compute, uses_unlabeled=True)] == [True]
    assert [r["uses_unlabeled"] for r in study._store(PARTS, compute)] == [False] and len(calls) == 1


def test_a_setting_added_later_keeps_old_keys_until_it_is_set():
    """A field marked ``KEYED_WHEN_SET`` is left out of the key at its default, so the runs stored
    before it existed are still found; once set, it keys the run like any other field."""
    from dataclasses import field, make_dataclass

    Old = make_dataclass("Settings", [("lr", float), ("steps", int)])
    New = make_dataclass("Settings", [("lr", float), ("steps", int),
                                      ("extra", object, field(default=None, metadata={store_module.KEYED_WHEN_SET: True}))])
    assert run_key({"s": Old(1e-3, 10)}) == run_key({"s": New(1e-3, 10)})
    assert run_key({"s": New(1e-3, 10, extra=Settings(1e-3, 10))}) != run_key({"s": New(1e-3, 10)})


def _verify_store(tmp_path, monkeypatch, key: str) -> tuple[RunStore, object]:
    """A store as ``make verify`` opens it: ``key`` listed for recomputation, a log of the checks."""
    listed, log = tmp_path / "keys.json", tmp_path / "checks.jsonl"
    listed.write_text(json.dumps([key]))
    monkeypatch.setenv("SENTENCE_MTL_STORE_VERIFY", str(listed))
    monkeypatch.setenv("SENTENCE_MTL_STORE_VERIFY_LOG", str(log))
    return RunStore(tmp_path / "store"), log


@pytest.mark.parametrize("recomputed, identical, largest", [(0.5, True, 0.0), (0.5 + 1e-7, False, 1e-7)])
def test_make_verify_logs_each_listed_run_with_its_largest_metric_difference(tmp_path, monkeypatch, recomputed,
                                                                             identical, largest):
    compute, calls = counting_run([0.5, recomputed])
    RunStore(tmp_path / "store").run(recorder(), PARTS, compute)
    verifier, log = _verify_store(tmp_path, monkeypatch, RunStore.key(recorder(), PARTS))
    records = verifier.run(recorder(), PARTS, compute)
    check = json.loads(log.read_text())
    assert len(calls) == 2 and records[0]["value"] == 0.5  # the stored record is what the notebook reads
    assert check["identical"] is identical and check["values_identical"] is identical
    assert check["largest_value_difference"] == pytest.approx(largest, abs=1e-12)


def test_a_setting_echoed_at_none_by_a_fresh_run_matches_a_record_stored_before_it_existed(tmp_path):
    """Settings added to a configuration later are echoed as None by a recomputed run and absent
    from older records: both mean the setting was not used, so the check passes."""
    def run_with(config):
        def compute(child):
            child.add(task="topic", dataset="d", strategy="s", metric="accuracy", value=0.5, n_test=10,
                      strategy_config=config, activation_mb=270.1 + len(config))
        return compute

    RunStore(tmp_path).run(recorder(), PARTS, run_with({"lr": 0.1}))
    checker = RunStore(tmp_path, spot_check=1.0)
    checker.run(recorder(), PARTS, run_with({"lr": 0.1, "contrastive": None}))
    assert checker.counts["checked"] == 1
    with pytest.raises(StoreMismatch, match="strategy_config"):
        RunStore(tmp_path, spot_check=1.0).run(recorder(), PARTS, run_with({"lr": 0.2}))
