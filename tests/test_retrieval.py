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


def test_hard_negative_is_the_top_bm25_document_that_is_neither_relevant_nor_too_close():
    from sentence_mtl.retrieval import bm25_hard_negatives

    doc_ids = ["pos", "twin", "lexical", "other"]
    sparse = np.array([[9.0, 8.0, 7.0, 1.0]])  # BM25: positive, then an unjudged twin, then a lexical match
    dense = np.array([[0.80, 0.78, 0.50, 0.10]])  # the twin scores 97.5% of the positive: a likely false negative
    assert bm25_hard_negatives(sparse, dense, ["q"], doc_ids, {"q": {"pos": 1}}) == {"q": "lexical"}
    assert bm25_hard_negatives(sparse, dense, ["q"], doc_ids, {"q": {"pos": 1}}, max_ratio=1.0) == {"q": "twin"}
    with pytest.raises(ValueError, match="false-negative filter"):
        bm25_hard_negatives(sparse, dense, ["q"], doc_ids, {"q": {"pos": 1}}, max_ratio=0.0)


def test_training_pairs_carry_each_claims_negative_as_a_third_column():
    data = _data()
    anchors, positives, negatives = training_pairs(data, {q: "0" if q != "q0" else "1" for q in data.qrels})
    assert len(anchors) == len(positives) == len(negatives) == 10
    assert negatives[0] == "t1 text 1" and negatives[1] == "t0 text 0" and positives[0] == "t0 text 0"


def test_finetune_refuses_settings_that_do_not_match_its_inputs():
    from sentence_mtl.retrieval import RetrievalConfig, finetune_mnrl

    with pytest.raises(ValueError, match="third column"):
        finetune_mnrl((["a"], ["b"]), RetrievalConfig(hard_negatives=True), "unused")
    with pytest.raises(ValueError, match="validation"):
        finetune_mnrl((["a"], ["b"]), RetrievalConfig(select_epoch=True), "unused")


def test_new_settings_at_their_defaults_keep_the_stored_runs_keys():
    from sentence_mtl.experiments.store import fingerprint
    from sentence_mtl.retrieval import RetrievalConfig

    assert set(fingerprint(RetrievalConfig())) == {"__class__", *RetrievalConfig.__dataclass_fields__} - {
        "hard_negatives", "select_epoch"}


def test_bm25_stems_so_inflected_words_match():
    docs = ["mutations in the gene cause disease", "weather report for the weekend", "gene therapy trials"]
    scores = bm25_scores(["a mutation causing the disease"], docs)
    assert scores.shape == (1, 3) and scores.argmax() == 0  # "mutation" ~ "mutations", "causing" ~ "cause"
    assert bm25_scores(["mutation causing"], docs)[0, 0] > 0 and bm25_scores(["mutation causing"], docs)[0, 1] == 0


@pytest.mark.parametrize("queries, documents", [
    (["the of and"], ["mutations in the gene", "gene therapy"]),  # a query of stop words only
    (["mutation"], ["the a", "of"]),  # documents of stop words only: bm25s cannot index them
    (["!!!"], ["", "gene"]),  # symbols, and an empty document
    ([], ["gene"]),  # no query
])
def test_bm25_scores_zero_where_no_word_can_match(queries, documents):
    scores = bm25_scores(queries, documents)
    assert scores.shape == (len(queries), len(documents)) and np.isfinite(scores).all()
    assert (scores[:, [i for i, d in enumerate(documents) if "gene" not in d]] == 0).all()


@pytest.mark.parametrize("seed", range(6))
def test_hard_negatives_encoding_few_documents_match_the_whole_corpus(seed):
    """Same negatives as scoring every document, whatever the filter rejects (integer vectors keep
    every dot product exact); fewer documents encoded when the negatives sit near the top."""
    from sentence_mtl.retrieval import bm25_hard_negatives, bm25_hard_negatives_encoding_few

    rng = np.random.default_rng(seed)
    n_queries, n_docs = 12, 200
    docs = rng.integers(-3, 4, (n_docs, 6)).astype(float)
    queries = rng.integers(-3, 4, (n_queries, 6)).astype(float)
    sparse = rng.integers(0, 5 if seed % 2 else 50, (n_queries, n_docs)).astype(float)  # ties when few values
    doc_ids, query_ids = [f"d{j}" for j in range(n_docs)], [f"q{i}" for i in range(n_queries)]
    qrels = {q: {f"d{j}": 1 for j in rng.choice(n_docs, 2, replace=False)} for q in query_ids}
    for i, q in enumerate(query_ids):  # relevant documents close to their query, as in real data
        for d in qrels[q]:
            docs[int(d[1:])] = queries[i] * 2
    if seed >= 4:  # the filter rejects every query's top BM25 documents: the window must grow
        for i in range(n_queries):
            docs[np.argsort(-sparse[i], kind="stable")[:6]] = queries[i] * 2
    encoded = []

    def encode(indices):
        encoded.extend(indices)
        return docs[indices]

    try:
        expected = bm25_hard_negatives(sparse, queries @ docs.T, query_ids, doc_ids, qrels)
    except ValueError:
        with pytest.raises(ValueError, match="false-negative filter"):
            bm25_hard_negatives_encoding_few(sparse, queries, encode, query_ids, doc_ids, qrels)
        return
    negatives, count = bm25_hard_negatives_encoding_few(sparse, queries, encode, query_ids, doc_ids, qrels)
    assert negatives == expected and count == len(encoded) == len(set(encoded)) <= n_docs
    if seed < 4:
        assert count < n_docs
