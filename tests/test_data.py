"""Unit tests for sentence_mtl.data: loaders, error messages, checksums, splits and sampling.

Every test builds its own small files under ``tmp_path``; none needs the real data. The last
two tests check the committed ``data/sample/`` folder and, when it is present, the real data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sentence_mtl.config import REPO_ROOT, SAMPLE_DATA_DIR
from sentence_mtl.data import (
    AG_NEWS_LABELS,
    AIRLINE_LABELS,
    MANIFEST_NAME,
    REAL_DATA_MANIFEST,
    SENTIMENT_LABELS,
    DataError,
    DataSource,
    TaskData,
    load_ag_news,
    load_airline,
    load_scifact,
    load_stsb,
    load_task,
    load_tweeteval_sentiment,
    sample_per_class,
    stratified_subset,
    validation_split,
)

# --------------------------------------------------------------------------- fixture writers


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def source(root: Path, manifest: dict | None = None) -> DataSource:
    return DataSource(root, manifest=manifest)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


AG_GOOD = (
    '"3","Oil Climbs","Crude rose 2 percent on Monday."\n'
    '"1","Talks Resume","Envoys met in the capital, officials said."\n'
    '"2","Late Winner","A header in stoppage time won the cup."\n'
    '"4","New Chip","The processor halves power use, its maker said ""today""."\n'
)

TWEETS_GOOD = "@user great day at the beach \nthe bus is late again \nstore opens at 9 \n"
TWEET_LABELS_GOOD = "2\n0\n1\n"

STS_GOOD = (
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA man plays guitar.\tA man is playing a guitar.\n"
    "main-news\theadlines\t2013\t0002\t0.000\tStorm hits coast\tTeam wins title\n"
    "main-forums\tanswer-answer\t2016\t0003\t3\tIt depends on the school.\tIt varies by program.\t"
    "StackExchange Network: http://example.org/q/1 Author: a\tStackExchange Network: "
    "http://example.org/q/2 Author: b\n"
)

CORPUS_GOOD = "".join(json.dumps(d) + "\n" for d in [
    {"_id": "101", "title": "Aspirin and cancer", "text": "Aspirin lowered incidence.", "metadata": {}},
    {"_id": "102", "title": "Sleep and memory", "text": "Sleep loss impaired memory.", "metadata": {}},
    {"_id": "103", "title": "Zinc and colds", "text": "Zinc shortened colds.", "metadata": {}},
])
QUERIES_GOOD = "".join(json.dumps(q) + "\n" for q in [
    {"_id": "0", "text": "Aspirin lowers cancer risk.", "metadata": {}},
    {"_id": "1", "text": "Sleep loss impairs memory.", "metadata": {}},
    {"_id": "2", "text": "Zinc shortens colds.", "metadata": {}},
])
QRELS_TRAIN_GOOD = "query-id\tcorpus-id\tscore\n0\t101\t1\n0\t103\t1\n2\t103\t1\n"
QRELS_TEST_GOOD = "query-id\tcorpus-id\tscore\n1\t102\t1\n"

AIRLINE_HEADER = (
    "tweet_id,airline_sentiment,airline_sentiment_confidence,negativereason,"
    "negativereason_confidence,airline,airline_sentiment_gold,name,negativereason_gold,"
    "retweet_count,text,tweet_coord,tweet_created,tweet_location,user_timezone,repaired_from_HBGRR\n"
)


def airline_row(sentiment: str, airline: str, text: str) -> str:
    text = '"' + text.replace('"', '""') + '"'
    return (f"570000000000000000,{sentiment},1,,,{airline},,someone,,0,{text},,"
            f"2015-02-24 11:35:52 -0800,,,0\n")


AIRLINE_GOOD = (
    AIRLINE_HEADER
    + airline_row("negative", "United", "@united lost my bag, again")
    + airline_row("positive", "Virgin America", "@VirginAmerica best crew ever")
    + airline_row("neutral", "US Airways", "@USAirways which terminal\nat LGA?")
    + airline_row("positive", "Delta", "@delta thanks!")
)


def write_scifact(root: Path, corpus=CORPUS_GOOD, queries=QUERIES_GOOD,
                  train=QRELS_TRAIN_GOOD, test=QRELS_TEST_GOOD) -> None:
    write(root, "scifact_beir/corpus.jsonl", corpus)
    write(root, "scifact_beir/queries.jsonl", queries)
    write(root, "scifact_beir/qrels/train.tsv", train)
    write(root, "scifact_beir/qrels/test.tsv", test)


def make_task(counts: list[int], names: tuple[str, ...] | None = None) -> TaskData:
    """A TaskData with counts[c] items of class c, classes interleaved."""
    names = names or tuple(f"c{i}" for i in range(len(counts)))
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(counts)])
    labels = labels[np.random.default_rng(123).permutation(len(labels))]
    texts = [f"text {i} of class {c}" for i, c in enumerate(labels)]
    return TaskData("t", "toy", "train", texts, labels, names)


def assert_names_file_and_line(err: pytest.ExceptionInfo, path: Path, line: int) -> None:
    message = str(err.value)
    assert str(path) in message, message
    assert f"line {line}" in message, message


# --------------------------------------------------------------------------- loaders: good input


def test_ag_news_parses_one_based_classes_and_joins_title_and_description(tmp_path):
    write(tmp_path, "ag_news/test.csv", AG_GOOD)
    data = load_ag_news("test", source(tmp_path))
    assert len(data) == 4
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [2, 0, 1, 3]  # "3","1","2","4" are 1-based
    assert [data.label_names[i] for i in data.labels] == ["Business", "World", "Sports", "Sci/Tech"]
    assert data.texts[0] == "Oil Climbs Crude rose 2 percent on Monday."
    assert data.texts[3] == 'New Chip The processor halves power use, its maker said "today".'
    assert data.label_names == AG_NEWS_LABELS
    assert data.task == "topic" and data.split == "test" and not data.is_sample


def test_ag_news_train_with_empty_description_is_stripped(tmp_path):
    write(tmp_path, "ag_news/train.csv", '"2","Rookie scores 40 in debut",""\n')
    data = load_ag_news("train", source(tmp_path))
    assert data.texts == ["Rookie scores 40 in debut"]
    assert data.labels.tolist() == [1]


def test_ag_news_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError):
        load_ag_news("val", source(tmp_path))


def test_tweeteval_parses_text_and_labels(tmp_path):
    write(tmp_path, "tweeteval_sentiment/val_text.txt", TWEETS_GOOD)
    write(tmp_path, "tweeteval_sentiment/val_labels.txt", TWEET_LABELS_GOOD)
    data = load_tweeteval_sentiment("val", source(tmp_path))
    assert data.texts == ["@user great day at the beach", "the bus is late again", "store opens at 9"]
    assert data.labels.tolist() == [2, 0, 1]
    assert data.label_names == SENTIMENT_LABELS
    assert data.class_counts() == {"negative": 1, "neutral": 1, "positive": 1}


def test_tweeteval_keeps_unicode_line_separators_inside_a_tweet(tmp_path):
    # Only "\n" ends a tweet; a U+2028 inside a tweet must not split it into two lines.
    write(tmp_path, "tweeteval_sentiment/test_text.txt", "one\u2028still one \ntwo \n")
    write(tmp_path, "tweeteval_sentiment/test_labels.txt", "1\n2\n")
    data = load_tweeteval_sentiment("test", source(tmp_path))
    assert len(data) == 2 and data.labels.tolist() == [1, 2]


def test_stsb_parses_scores_and_accepts_nine_field_lines(tmp_path):
    write(tmp_path, "stsb/sts-dev.csv", STS_GOOD)
    pairs = load_stsb("dev", source(tmp_path))
    assert len(pairs) == 3
    np.testing.assert_allclose(pairs.scores, [5.0, 0.0, 3.0])
    assert pairs.sentences1[2] == "It depends on the school."
    assert pairs.sentences2[2] == "It varies by program."  # not the licence fields 7 and 8
    assert pairs.sentences2[0] == "A man is playing a guitar."


def test_scifact_parses_corpus_queries_and_split_qrels(tmp_path):
    write_scifact(tmp_path)
    train = load_scifact("train", source(tmp_path))
    assert set(train.corpus) == {"101", "102", "103"}
    assert train.corpus["101"] == {"title": "Aspirin and cancer", "text": "Aspirin lowered incidence."}
    assert train.qrels == {"0": {"101": 1, "103": 1}, "2": {"103": 1}}
    assert set(train.queries) == {"0", "2"}  # only the queries judged in this split
    test = load_scifact("test", source(tmp_path))
    assert test.qrels == {"1": {"102": 1}}
    assert test.queries == {"1": "Sleep loss impairs memory."}


def test_airline_parses_labels_and_multiline_text(tmp_path):
    write(tmp_path, "twitter_us_airline_sentiment/Tweets_repaired.csv", AIRLINE_GOOD)
    data = load_airline(source(tmp_path))
    assert len(data.texts) == 4
    assert data.texts[0] == "@united lost my bag, again"
    assert data.texts[2] == "@USAirways which terminal\nat LGA?"
    assert [AIRLINE_LABELS[i] for i in data.labels["airline"]] == [
        "United", "Virgin America", "US Airways", "Delta"]
    assert [SENTIMENT_LABELS[i] for i in data.labels["sentiment"]] == [
        "negative", "positive", "neutral", "positive"]
    sentiment = data.task("sentiment")
    assert sentiment.label_names == SENTIMENT_LABELS and len(sentiment) == 4


# --------------------------------------------------------------------------- loaders: bad input


def test_ag_news_row_with_two_fields(tmp_path):
    path = write(tmp_path, "ag_news/train.csv", AG_GOOD + '"1","title only"\n')
    with pytest.raises(DataError, match="expected 3 CSV fields") as err:
        load_ag_news("train", source(tmp_path))
    assert_names_file_and_line(err, path, 5)


def test_ag_news_unknown_class(tmp_path):
    bad = AG_GOOD.splitlines(keepends=True)
    bad.insert(2, '"7","Odd","A row with class seven."\n')
    path = write(tmp_path, "ag_news/test.csv", "".join(bad))
    with pytest.raises(DataError, match="unknown label '7'") as err:
        load_ag_news("test", source(tmp_path))
    assert_names_file_and_line(err, path, 3)


@pytest.mark.parametrize("label", ["0", "5", "World", ""])
def test_ag_news_other_bad_classes(tmp_path, label):
    path = write(tmp_path, "ag_news/test.csv", f'"{label}","A title","A description."\n')
    with pytest.raises(DataError) as err:
        load_ag_news("test", source(tmp_path))
    assert_names_file_and_line(err, path, 1)


def test_tweeteval_line_count_mismatch(tmp_path):
    text = write(tmp_path, "tweeteval_sentiment/train_text.txt", TWEETS_GOOD)
    labels = write(tmp_path, "tweeteval_sentiment/train_labels.txt", "2\n0\n")
    with pytest.raises(DataError) as err:
        load_tweeteval_sentiment("train", source(tmp_path))
    message = str(err.value)
    assert str(text) in message and str(labels) in message
    assert "3 lines" in message and "has 2" in message


def test_tweeteval_label_three(tmp_path):
    write(tmp_path, "tweeteval_sentiment/train_text.txt", TWEETS_GOOD)
    labels = write(tmp_path, "tweeteval_sentiment/train_labels.txt", "2\n3\n1\n")
    with pytest.raises(DataError, match="unknown label '3'") as err:
        load_tweeteval_sentiment("train", source(tmp_path))
    assert_names_file_and_line(err, labels, 2)


def test_tweeteval_empty_tweet_line(tmp_path):
    text = write(tmp_path, "tweeteval_sentiment/train_text.txt", "fine \n   \nalso fine \n")
    write(tmp_path, "tweeteval_sentiment/train_labels.txt", "1\n1\n1\n")
    with pytest.raises(DataError, match="empty text") as err:
        load_tweeteval_sentiment("train", source(tmp_path))
    assert_names_file_and_line(err, text, 2)


@pytest.mark.parametrize("score", ["abc", "7.5", "-0.5", "nan"])
def test_stsb_bad_score(tmp_path, score):
    lines = STS_GOOD.splitlines(keepends=True)
    lines[1] = lines[1].replace("\t0.000\t", f"\t{score}\t")
    path = write(tmp_path, "stsb/sts-train.csv", "".join(lines))
    with pytest.raises(DataError, match="not a number in \\[0, 5\\]") as err:
        load_stsb("train", source(tmp_path))
    assert_names_file_and_line(err, path, 2)


def test_stsb_too_few_fields(tmp_path):
    path = write(tmp_path, "stsb/sts-test.csv", STS_GOOD + "main-news\theadlines\t2013\t0004\t2.0\tonly one\n")
    with pytest.raises(DataError, match="at least 7") as err:
        load_stsb("test", source(tmp_path))
    assert_names_file_and_line(err, path, 4)


def test_scifact_bad_json_line_in_corpus(tmp_path):
    lines = CORPUS_GOOD.splitlines(keepends=True)
    lines.insert(1, '{"_id": "999", "title": "cut off", "text": "trunc\n')
    write_scifact(tmp_path, corpus="".join(lines))
    with pytest.raises(DataError, match="not valid JSON") as err:
        load_scifact("test", source(tmp_path))
    assert_names_file_and_line(err, tmp_path / "scifact_beir/corpus.jsonl", 2)


def test_scifact_qrels_pointing_to_missing_doc(tmp_path):
    write_scifact(tmp_path, test=QRELS_TEST_GOOD + "1\t404\t1\n")
    with pytest.raises(DataError, match="'404'") as err:
        load_scifact("test", source(tmp_path))
    assert_names_file_and_line(err, tmp_path / "scifact_beir/qrels/test.tsv", 3)


def test_scifact_qrels_pointing_to_missing_query(tmp_path):
    write_scifact(tmp_path, train=QRELS_TRAIN_GOOD + "77\t101\t1\n")
    with pytest.raises(DataError, match="'77'") as err:
        load_scifact("train", source(tmp_path))
    assert_names_file_and_line(err, tmp_path / "scifact_beir/qrels/train.tsv", 5)


def test_scifact_qrels_without_header(tmp_path):
    write_scifact(tmp_path, test="1\t102\t1\n")
    with pytest.raises(DataError, match="header"):
        load_scifact("test", source(tmp_path))


def test_airline_unknown_airline(tmp_path):
    path = write(tmp_path, "twitter_us_airline_sentiment/Tweets_repaired.csv",
                 AIRLINE_GOOD + airline_row("neutral", "JetBlue", "@JetBlue hi"))
    with pytest.raises(DataError, match="unknown airline 'JetBlue'") as err:
        load_airline(source(tmp_path))
    # The header is line 1 and the third tweet spans two lines, so the new row is on line 7.
    assert_names_file_and_line(err, path, 7)


def test_airline_unknown_sentiment(tmp_path):
    path = write(tmp_path, "twitter_us_airline_sentiment/Tweets_repaired.csv",
                 AIRLINE_HEADER + airline_row("angry", "Delta", "@delta hmm"))
    with pytest.raises(DataError, match="unknown airline_sentiment 'angry'") as err:
        load_airline(source(tmp_path))
    assert_names_file_and_line(err, path, 2)


def test_airline_missing_column(tmp_path):
    write(tmp_path, "twitter_us_airline_sentiment/Tweets_repaired.csv",
          "tweet_id,airline,text\n1,Delta,@delta hi\n")
    with pytest.raises(DataError, match="airline_sentiment"):
        load_airline(source(tmp_path))


@pytest.mark.parametrize("load", [
    lambda s: load_ag_news("train", s),
    lambda s: load_tweeteval_sentiment("val", s),
    lambda s: load_stsb("test", s),
    lambda s: load_scifact("test", s),
    load_airline,
])
def test_missing_file_says_how_to_fix(tmp_path, load):
    with pytest.raises(DataError, match="Missing data file") as err:
        load(source(tmp_path))
    assert "SENTENCE_MTL_DATA" in str(err.value)
    assert str(tmp_path) in str(err.value)


# --------------------------------------------------------------------------- resolving the folder


def test_resolve_nonexistent_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        DataSource.resolve(tmp_path / "nope", "standard")


def test_resolve_nonexistent_folder_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_MTL_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="does not exist"):
        DataSource.resolve(None, "smoke")


def test_resolve_standard_without_data_folder(monkeypatch):
    monkeypatch.delenv("SENTENCE_MTL_DATA", raising=False)
    with pytest.raises(DataError, match="No data folder configured") as err:
        DataSource.resolve(None, "standard")
    assert "SENTENCE_MTL_DATA" in str(err.value)


def test_resolve_profile_from_env(monkeypatch):
    monkeypatch.delenv("SENTENCE_MTL_DATA", raising=False)
    monkeypatch.setenv("SENTENCE_MTL_PROFILE", "large")
    with pytest.raises(DataError, match="'large'"):
        DataSource.resolve()


def test_resolve_smoke_falls_back_to_sample(monkeypatch):
    monkeypatch.delenv("SENTENCE_MTL_DATA", raising=False)
    src = DataSource.resolve(None, "smoke")
    assert src.is_sample
    assert src.root == SAMPLE_DATA_DIR
    assert src.manifest  # the sample is checked against its own manifest


def test_resolve_explicit_folder_uses_real_manifest(tmp_path, monkeypatch):
    monkeypatch.delenv("SENTENCE_MTL_DATA", raising=False)
    src = DataSource.resolve(tmp_path, "smoke")  # an explicit folder wins over the fallback
    assert src.root == tmp_path.resolve()
    assert not src.is_sample
    assert src.manifest and "ag_news/test.csv" in src.manifest


def test_resolve_sample_folder_is_flagged_as_sample(monkeypatch):
    monkeypatch.setenv("SENTENCE_MTL_DATA", str(SAMPLE_DATA_DIR))
    src = DataSource.resolve(None, "standard")
    assert src.is_sample


# --------------------------------------------------------------------------- checksums


def test_checksum_mismatch(tmp_path):
    path = write(tmp_path, "ag_news/test.csv", AG_GOOD)
    src = source(tmp_path, {"ag_news/test.csv": sha(AG_GOOD + " ")})
    with pytest.raises(DataError, match="Checksum mismatch") as err:
        load_ag_news("test", src)
    assert str(path) in str(err.value)


def test_checksum_match_passes(tmp_path):
    write(tmp_path, "ag_news/test.csv", AG_GOOD)
    src = source(tmp_path, {"ag_news/test.csv": sha(AG_GOOD)})
    assert len(load_ag_news("test", src)) == 4
    assert "ag_news/test.csv" in src._verified


def test_checksum_catches_a_file_edited_after_a_first_read_in_a_new_source(tmp_path):
    write(tmp_path, "ag_news/test.csv", AG_GOOD)
    manifest = {"ag_news/test.csv": sha(AG_GOOD)}
    load_ag_news("test", source(tmp_path, manifest))
    write(tmp_path, "ag_news/test.csv", AG_GOOD.replace("Oil", "Gas"))
    with pytest.raises(DataError, match="Checksum mismatch"):
        load_ag_news("test", source(tmp_path, manifest))


def test_file_not_in_manifest(tmp_path):
    write(tmp_path, "ag_news/test.csv", AG_GOOD)
    with pytest.raises(DataError, match="not listed in the checksum manifest"):
        load_ag_news("test", source(tmp_path, {"ag_news/train.csv": sha(AG_GOOD)}))


@pytest.mark.parametrize("line", ["not-a-digest", f"{'0' * 64}", f"{'0' * 63}  ag_news/test.csv",
                                  f"{'g' * 64}  ag_news/test.csv", f"{'0' * 64}ag_news/test.csv"])
def test_malformed_manifest_line_names_the_line(tmp_path, line):
    from sentence_mtl.data_folder import read_manifest as parse_manifest

    write(tmp_path, "ag_news/test.csv", AG_GOOD)
    write(tmp_path, MANIFEST_NAME, f"# a comment\n{sha(AG_GOOD)}  ag_news/test.csv\n{line}\n")
    with pytest.raises(DataError, match=f"{MANIFEST_NAME}, line 3: expected"):
        parse_manifest(tmp_path / MANIFEST_NAME)
    with pytest.raises(DataError, match="line 3"):
        DataSource.resolve(tmp_path)


def test_manifest_reads_sha256sum_binary_mode_and_crlf(tmp_path):
    from sentence_mtl.data_folder import read_manifest as parse_manifest

    write(tmp_path, MANIFEST_NAME, f"{sha(AG_GOOD).upper()} *ag_news/test.csv\r\n")
    assert parse_manifest(tmp_path / MANIFEST_NAME) == {"ag_news/test.csv": sha(AG_GOOD)}


@pytest.mark.parametrize("rel, load", [("ag_news/test.csv", lambda s: load_ag_news("test", s)),
                                       ("twitter_us_airline_sentiment/Tweets_repaired.csv", load_airline)])
def test_csv_data_that_is_not_utf8(tmp_path, rel, load):
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(b'"3","Caf\xe9 prices","rose"\n' if "ag_news" in rel
                     else b"airline,airline_sentiment,text\nDelta,positive,caf\xe9\n")
    with pytest.raises(DataError, match="not valid UTF-8"):
        load(source(tmp_path))


# --------------------------------------------------------------------------- sampling and splits


def test_sample_per_class_exact_k_and_deterministic():
    data = make_task([30, 20, 70])
    a = sample_per_class(data, 8, seed=0)
    b = sample_per_class(data, 8, seed=0)
    assert a.class_counts() == {"c0": 8, "c1": 8, "c2": 8}
    assert len(a) == 24
    assert a.texts == b.texts
    np.testing.assert_array_equal(a.labels, b.labels)


def test_sample_per_class_differs_across_seeds():
    data = make_task([30, 20, 70])
    samples = {tuple(sample_per_class(data, 8, seed=s).texts) for s in range(4)}
    assert len(samples) == 4


def test_sample_per_class_nested_across_k():
    data = make_task([100, 80, 120])
    for seed in (0, 1, 2):
        small = set(sample_per_class(data, 8, seed).texts)
        large = set(sample_per_class(data, 64, seed).texts)
        assert small < large


def test_sample_per_class_labels_match_texts():
    data = make_task([15, 15])
    sample = sample_per_class(data, 5, seed=3)
    for text, label in zip(sample.texts, sample.labels):
        assert text.endswith(f"class {label}")


def test_sample_per_class_too_few_raises():
    with pytest.raises(ValueError, match="'c1'"):
        sample_per_class(make_task([10, 7, 10]), 8, seed=0)


def test_sample_per_class_none_is_everything():
    data = make_task([3, 4])
    assert sample_per_class(data, None, seed=0) is data


def test_validation_split_deterministic_stratified_disjoint():
    data = make_task([200, 100, 300])
    train, val = validation_split(data)
    train2, val2 = validation_split(data)
    assert train.texts == train2.texts and val.texts == val2.texts
    assert val.class_counts() == {"c0": 10, "c1": 5, "c2": 15}  # 5% of each class
    assert train.class_counts() == {"c0": 190, "c1": 95, "c2": 285}
    assert not set(train.texts) & set(val.texts)
    assert sorted(train.texts + val.texts) == sorted(data.texts)
    assert train.split == "train" and val.split == "val"


def test_validation_split_is_a_random_draw_not_the_head_of_each_class():
    data = make_task([200, 200])
    _, val = validation_split(data)
    for c in (0, 1):
        idx = np.flatnonzero(data.labels == c)
        head = {data.texts[i] for i in idx[:10]}
        assert {t for t, y in zip(val.texts, val.labels) if y == c} != head


def test_validation_split_does_not_depend_on_global_rng():
    data = make_task([40, 40])
    np.random.seed(1)
    _, a = validation_split(data, 0.25)
    np.random.seed(2)
    _, b = validation_split(data, 0.25)
    assert a.texts == b.texts


def test_stratified_subset_size():
    data = make_task([50, 50, 50, 50])
    subset = stratified_subset(data, 40, seed=0)
    assert len(subset) == 40
    assert subset.class_counts() == {"c0": 10, "c1": 10, "c2": 10, "c3": 10}
    assert stratified_subset(data, None) is data
    assert stratified_subset(data, 1000) is data
    assert stratified_subset(data, 40, seed=0).texts == subset.texts


def test_load_task_topic_val_is_carved_from_train(tmp_path):
    rows = "".join(f'"{c}","Headline {i}","Body {i} of class {c}."\n'
                   for i in range(40) for c in (1, 2, 3, 4))
    write(tmp_path, "ag_news/train.csv", rows)
    src = source(tmp_path)
    train, val = load_task("topic", "train", src), load_task("topic", "val", src)
    assert len(train) + len(val) == 160
    assert val.class_counts() == {name: 2 for name in AG_NEWS_LABELS}
    assert not set(train.texts) & set(val.texts)
    with pytest.raises(ValueError):
        load_task("nonsense", "train", src)


# --------------------------------------------------------------------------- committed sample


def read_manifest(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip().lstrip("*")] = digest
    return out


def test_committed_sample_matches_checksums_and_loads_everywhere(monkeypatch):
    manifest = read_manifest(SAMPLE_DATA_DIR / MANIFEST_NAME)
    on_disk = {p.relative_to(SAMPLE_DATA_DIR).as_posix() for p in SAMPLE_DATA_DIR.rglob("*")
               if p.is_file() and p.name not in ("README.md", MANIFEST_NAME)}
    assert set(manifest) == on_disk
    for rel, digest in manifest.items():
        assert hashlib.sha256((SAMPLE_DATA_DIR / rel).read_bytes()).hexdigest() == digest, rel

    monkeypatch.delenv("SENTENCE_MTL_DATA", raising=False)
    src = DataSource.resolve(None, "smoke")
    for task in ("topic", "sentiment"):
        for split in ("train", "val", "test"):
            data = load_task(task, split, src)
            assert data.is_sample and len(data) > 0
            assert min(data.class_counts().values()) > 0, (task, split)
        few = sample_per_class(load_task(task, "train", src), 8, seed=0)
        assert set(few.class_counts().values()) == {8}
    for split in ("train", "dev", "test"):
        pairs = load_stsb(split, src)
        assert pairs.is_sample and len(pairs) >= 10
        assert pairs.scores.min() <= 1.0 and pairs.scores.max() >= 4.0
    train, test = load_scifact("train", src), load_scifact("test", src)
    assert train.queries and test.queries and not set(train.queries) & set(test.queries)
    airline = load_airline(src)
    assert airline.is_sample
    for task, names in (("airline", AIRLINE_LABELS), ("sentiment", SENTIMENT_LABELS)):
        assert np.bincount(airline.labels[task], minlength=len(names)).min() >= 3
    assert src._verified == set(manifest) - {"tweeteval_sentiment/mapping.txt"}


# --------------------------------------------------------------------------- the real data


def real_data_dir() -> Path | None:
    for candidate in (os.environ.get("SENTENCE_MTL_DATA"), REPO_ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "ag_news").is_dir():
            path = Path(candidate).resolve()
            if path != SAMPLE_DATA_DIR.resolve():
                return path
    return None


@pytest.mark.skipif(real_data_dir() is None, reason="real data folder not present")
def test_real_data_checksums_and_official_sizes():
    root = real_data_dir()
    manifest = read_manifest(REAL_DATA_MANIFEST)
    for rel, digest in manifest.items():
        h = hashlib.sha256()
        with open(root / rel, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        assert h.hexdigest() == digest, rel

    src = DataSource(root, manifest)
    assert len(load_task("topic", "test", src)) == 7600
    assert set(load_task("topic", "test", src).class_counts().values()) == {1900}
    assert len(load_task("sentiment", "test", src)) == 12284
    assert len(load_task("sentiment", "val", src)) == 2000
    assert len(load_stsb("test", src)) == 1379
    assert len(load_stsb("dev", src)) == 1500
    test = load_scifact("test", src)
    assert len(test.queries) == 300
    assert sum(len(docs) for docs in test.qrels.values()) == 339
    assert len(load_airline(src).texts) == 14640
