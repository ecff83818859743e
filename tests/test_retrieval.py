import json
import math

import numpy as np
import pytest

from sentence_mtl.data import RetrievalData
from sentence_mtl.retrieval import (bm25_scores, current_best, promote_if_better, rank_metrics, register_run,
                                    split_queries, training_pairs)


def test_rank_metrics_by_hand():
    doc_ids = ["a", "b", "c", "d"]
    qrels = {"q1": {"b": 1}, "q2": {"a": 1, "d": 1}}
    scores = np.array([[0.9, 0.8, 0.1, 0.0],    # q1: b at rank 2
                       [0.9, 0.1, 0.2, 0.8]])   # q2: a at rank 1, d at rank 2
    m = rank_metrics(scores, ["q1", "q2"], doc_ids, qrels)
    ndcg_q1 = (1 / math.log2(3)) / 1.0
    assert m["ndcg@10"] == pytest.approx((ndcg_q1 + 1.0) / 2)
    assert m["mrr@10"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["recall@100"] == pytest.approx(1.0)


def test_rank_metrics_miss_scores_zero():
    m = rank_metrics(np.zeros((1, 12)) + np.arange(12)[::-1], ["q"], [str(i) for i in range(12)], {"q": {"11": 1}})
    assert m["ndcg@10"] == 0.0 and m["mrr@10"] == 0.0 and m["recall@100"] == 1.0


def test_bm25_prefers_lexical_match():
    docs = ["vitamin d deficiency and bone density", "football results from the weekend", "bone marrow transplant"]
    scores = bm25_scores(["vitamin d and bone density"], docs)
    assert scores.argmax() == 0


def _data():
    corpus = {str(i): {"title": f"t{i}", "text": f"text {i}"} for i in range(10)}
    queries = {f"q{i}": f"claim {i}" for i in range(10)}
    qrels = {f"q{i}": {str(i): 1} for i in range(10)}
    return RetrievalData("train", corpus, queries, qrels)


def test_split_queries_is_disjoint_and_fixed():
    train, val = split_queries(_data(), n_val=3)
    assert len(val.qrels) == 3 and not set(train.qrels) & set(val.qrels)
    assert split_queries(_data(), n_val=3)[1].qrels == val.qrels
    anchors, positives = training_pairs(train)
    assert len(anchors) == 7 and positives[0].startswith("t")


class FakeModel:
    def save_pretrained(self, path):
        import pathlib
        pathlib.Path(path).mkdir(parents=True)
        (pathlib.Path(path) / "config.json").write_text('{"model_type": "bert"}')  # the model's own


def test_registry_promotes_only_better_runs(tmp_path):
    first = register_run(FakeModel(), {"val_ndcg@10": 0.60}, {"seed": 0}, tmp_path, run_id="r0")
    assert promote_if_better(first, registry=tmp_path)
    worse = register_run(FakeModel(), {"val_ndcg@10": 0.55}, {"seed": 1}, tmp_path, run_id="r1")
    assert not promote_if_better(worse, registry=tmp_path)
    assert (tmp_path / "best").resolve().name == "r0"
    better = register_run(FakeModel(), {"val_ndcg@10": 0.70}, {"seed": 2}, tmp_path, run_id="r2")
    assert promote_if_better(better, registry=tmp_path)
    assert (tmp_path / "best").resolve().name == "r2"
    assert current_best(tmp_path)["val_ndcg@10"] == 0.70
    assert json.loads((tmp_path / "r1" / "run_config.json").read_text()) == {"seed": 1}
    assert json.loads((tmp_path / "r1" / "config.json").read_text()) == {"model_type": "bert"}  # untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
