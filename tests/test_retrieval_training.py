"""`make retrieval`'s plumbing (``sentence_mtl.experiments.retrieval_training``) on the sample
SciFact in the smoke profile (all-MiniLM-L6-v2 on a few pairs, seconds): the recipe validation chose in the
records given is the one trained, the run lands in the registry and is promoted only when better,
the service then serves it, and the command records its time. Nothing here is about quality."""

import json
import os
from pathlib import Path

import pytest

from sentence_mtl.experiments.grids import RETRIEVAL_RECIPES
from sentence_mtl.experiments.retrieval_training import chosen_recipe, main
from sentence_mtl.io import InputError


def _records(val_scores: dict[str, float]) -> list[dict]:
    """Notebook 05's records in miniature: BM25, the pretrained encoder, and per recipe two seeds
    with the validation score given and their hybrids."""
    base = {"task": "retrieval", "metric": "ndcg@10", "n_test": 300}
    rows = [base | {"strategy": "bm25", "value": 0.66}, base | {"strategy": "pretrained", "value": 0.64}]
    for recipe in RETRIEVAL_RECIPES:
        for seed in (0, 1):
            run = f"{recipe.dense}-{seed}"
            rows.append(base | {"strategy": recipe.dense, "value": 0.66, "seed": seed, "run_id": run,
                                "val_ndcg10": val_scores[recipe.dense], "train_seconds": 60.0})
            rows.append(base | {"strategy": recipe.hybrid, "value": 0.7, "seed": seed, "run_id": run,
                                "fusion_dense_weight": 0.6, "fusion_val_ndcg10": {"0.6": 0.7}})
    return rows


@pytest.mark.parametrize("chosen", [r.dense for r in RETRIEVAL_RECIPES])
def test_the_recipe_is_the_one_validation_chose(tmp_path, chosen):
    path = tmp_path / "records.json"
    path.write_text(json.dumps(_records({r.dense: 0.7 if r.dense == chosen else 0.6 for r in RETRIEVAL_RECIPES})))
    recipe, summary = chosen_recipe(path)
    assert recipe.dense == summary["chosen"] == chosen


def test_records_that_cannot_choose_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="make notebooks"):
        chosen_recipe(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(InputError, match="no fine-tuning records"):
        chosen_recipe(tmp_path / "empty.json")
    (tmp_path / "renamed.json").write_text(json.dumps(
        [r | {"strategy": "renamed"} if r["strategy"] == RETRIEVAL_RECIPES[0].dense else r
         for r in _records({r.dense: 0.7 if r is RETRIEVAL_RECIPES[0] else 0.6 for r in RETRIEVAL_RECIPES})]))
    with pytest.raises(InputError, match="'renamed'.*RETRIEVAL_RECIPES"):
        chosen_recipe(tmp_path / "renamed.json")


def test_make_retrieval_trains_registers_promotes_and_times_the_chosen_recipe(tmp_path, monkeypatch,
                                                                             tiny_model_dir, capsys):
    from fastapi.testclient import TestClient

    from sentence_mtl.serve import create_app

    monkeypatch.setenv("SENTENCE_MTL_PROFILE", "smoke")
    monkeypatch.setenv("SENTENCE_MTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SENTENCE_MTL_DATA", raising=False)  # the sample data of the smoke profile
    hard = next(r for r in RETRIEVAL_RECIPES if dict(r.settings).get("hard_negatives"))
    records = tmp_path / "records.json"
    records.write_text(json.dumps(_records({r.dense: 0.7 if r is hard else 0.6 for r in RETRIEVAL_RECIPES})))
    registry, output = tmp_path / "models" / "retrieval", tmp_path / "results" / "retrieval_timing.json"
    assert main(["--records", str(records), "--registry", str(registry), "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["recipe"] == hard.dense and result["promoted"] and result["best"] == result["run_id"]
    assert result["profile"] == "smoke" and result["is_sample"] and result["seed"] == 0
    assert 0 < result["documents_encoded_for_negatives"] <= result["n_documents"] and "notebook_run" in result
    assert len(result["val_ndcg10_by_epoch"]) == dict(hard.settings)["epochs"]  # the epoch kept chosen on validation
    assert 0 < result["train_seconds"] < result["make_retrieval_seconds"]
    run = registry / result["run_id"]
    config = json.loads((run / "run_config.json").read_text())
    assert config["recipe"] == hard.dense and config["hard_negatives"] and config["seed"] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics == result["metrics"] and 0 <= metrics["fusion_dense_weight"] <= 1
    assert "promoted to best" in capsys.readouterr().out

    # the service started beside that registry serves the promoted run, with its chosen weight
    (tmp_path / "models" / "multitask").symlink_to(_multitask(tmp_path, tiny_model_dir))
    monkeypatch.chdir(tmp_path)
    retrieval = TestClient(create_app()).get("/health").json()["models"]["retrieval"]
    assert retrieval["kind"] == "fine-tuned" and retrieval["path"] == f"models/retrieval/{result['run_id']}"
    assert retrieval["hybrid_dense_weight"] == metrics["fusion_dense_weight"]


def _multitask(root, bert_dir):
    from sentence_mtl.multitask import MultiTaskModel

    path = root / "multitask-model"
    MultiTaskModel.from_encoder_name(bert_dir, ["topic", "sentiment"], max_seq_length=128).save_pretrained(path)
    return path


def test_the_kept_epochs_corpus_vectors_are_the_returned_models(tmp_path, tiny_model_dir):
    """`make retrieval` scores the kept epoch with the vectors its validation computed: they must be
    what the returned model encodes."""
    import numpy as np

    from sentence_mtl.retrieval import RetrievalConfig, finetune_mnrl, validation_by_epoch

    documents = {f"d{i}": f"abstract {i} about protein {i % 3} and cell growth" for i in range(12)}
    queries = {f"q{i}": f"claim on protein {i % 3}" for i in range(4)}
    relevant = {q: {f"d{i}"} for i, q in enumerate(queries)}
    pairs = (list(queries.values()) * 2, [documents[f"d{i}"] for i in range(8)])
    config = RetrievalConfig(model=tiny_model_dir, max_seq_length=64, batch_size=4, epochs=2, select_epoch=True,
                             learning_rate=1e-3)
    vectors = []
    model, history = finetune_mnrl(pairs, config, tmp_path, (queries, documents, relevant), corpus_vectors=vectors)
    by_epoch = validation_by_epoch(history)
    assert len(vectors) == len(by_epoch) == 2 and vectors[0].shape == (12, 32)
    kept = vectors[int(np.argmax(by_epoch))]
    np.testing.assert_allclose(kept, model.encode(list(documents.values()), batch_size=32), atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-5)  # the epochs differ: the choice matters


REAL_DATA = os.environ.get("SENTENCE_MTL_DATA")


@pytest.mark.skipif(not REAL_DATA or not (Path(REAL_DATA) / "scifact_beir").is_dir(), reason="needs the real data")
def test_make_retrieval_builds_the_pairs_notebook_05_trained_on(monkeypatch):
    """The committed run store holds notebook 05's in-batch recipe, seed 0: the same documents,
    splits, pairs and settings give its key; one changed pair does not."""
    from sentence_mtl.config import get_profile
    from sentence_mtl.data import DataSource
    from sentence_mtl.experiments.grids import RETRIEVAL_GRIDS
    from sentence_mtl.experiments.retrieval_training import notebook_run, scifact_splits
    from sentence_mtl.retrieval import RetrievalConfig, training_pairs

    monkeypatch.delenv("SENTENCE_MTL_STORE_DIR", raising=False)
    profile, source = get_profile("standard"), DataSource.resolve(REAL_DATA, "standard")
    monkeypatch.setenv("SENTENCE_MTL_PROFILE", "standard")
    grid = RETRIEVAL_GRIDS["standard"]
    data = scifact_splits(grid, source)
    recipe = next(r for r in RETRIEVAL_RECIPES if not dict(r.settings).get("hard_negatives"))
    config = RetrievalConfig(max_seq_length=256, batch_size=grid.batch_size, seed=0, **dict(recipe.settings))
    anchors, positives = training_pairs(data.train)
    assert notebook_run(data, (anchors, positives), config, profile, source) is not None
    assert notebook_run(data, (anchors, positives[::-1]), config, profile, source) is None
