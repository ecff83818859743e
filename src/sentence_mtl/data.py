"""Task specs and loaders for every dataset, read in their own published formats.

The data folder (``SENTENCE_MTL_DATA`` or ``--data-dir``) has the layout its own ``INDEX.md``
describes. Every file is checked against a sha256 manifest before it is
parsed (:mod:`sentence_mtl.data_folder`), and every problem is a :class:`DataError` that names the file, the line, and the fix.
The hand-written ``data/sample/`` folder is used only by the ``smoke`` profile when no real
data folder is configured; anything computed on it is flagged ``is_sample``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .data_folder import (  # noqa: F401  (re-exported: the data folder is part of this module's interface)
    HOW_TO_FIX,
    MANIFEST_NAME,
    REAL_DATA_MANIFEST,
    DataError,
    DataSource,
    read_manifest,
    read_text,
    sha256_of,
)


# --------------------------------------------------------------------------- containers


@dataclass
class TaskData:
    """One split of a labelled text-classification task."""

    task: str
    dataset: str
    split: str
    texts: list[str]
    labels: np.ndarray  # int64 class indices into label_names
    label_names: tuple[str, ...]
    is_sample: bool = False

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices, split: str | None = None) -> "TaskData":
        indices = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            texts=[self.texts[i] for i in indices],
            labels=self.labels[indices],
            split=split or self.split,
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return dict(zip(self.label_names, counts.tolist()))


@dataclass
class SimilarityPairs:
    """STS-B: sentence pairs with a gold similarity in [0, 5]."""

    split: str
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray
    is_sample: bool = False

    def __len__(self) -> int:
        return len(self.scores)

    def head(self, n: int | None) -> "SimilarityPairs":
        """The first n pairs (None: all), for quick smoke runs."""
        if n is None or n >= len(self):
            return self
        return replace(self, sentences1=self.sentences1[:n], sentences2=self.sentences2[:n],
                       scores=self.scores[:n])


@dataclass
class RetrievalData:
    """BEIR layout: a corpus, queries, and binary relevance judgements for one split."""

    split: str
    corpus: dict[str, dict[str, str]]  # doc id -> {"title", "text"}
    queries: dict[str, str]  # query id -> text (only queries judged in this split)
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}
    is_sample: bool = False


@dataclass
class JointLabelData:
    """Texts that carry labels for several tasks at once (Twitter US Airline)."""

    dataset: str
    texts: list[str]
    labels: dict[str, np.ndarray]
    label_names: dict[str, tuple[str, ...]]
    is_sample: bool = False

    split: str = "all"

    def __len__(self) -> int:
        return len(self.texts)

    def task(self, task: str) -> TaskData:
        return TaskData(task, self.dataset, self.split, self.texts, self.labels[task],
                        self.label_names[task], self.is_sample)

    def subset(self, indices, split: str) -> "JointLabelData":
        indices = np.asarray(indices, dtype=np.int64)
        return replace(self, texts=[self.texts[i] for i in indices],
                       labels={t: y[indices] for t, y in self.labels.items()}, split=split)


@dataclass(frozen=True)
class TaskSpec:
    """What a classification task is: its dataset, classes, and the metric its benchmark reports."""

    name: str
    dataset: str
    label_names: tuple[str, ...]
    metric: str  # "accuracy" | "macro_recall"
    description: dict[str, str] = field(default_factory=dict)  # label -> a phrase, for zero-shot

    @property
    def label_descriptions(self) -> list[str]:
        """Each label's description, in class order (what zero-shot, the label prior and the anchors read)."""
        return [self.description[name] for name in self.label_names]


AG_NEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
SENTIMENT_LABELS = ("negative", "neutral", "positive")
AIRLINE_LABELS = ("American", "Delta", "Southwest", "US Airways", "United", "Virgin America")

TASKS: dict[str, TaskSpec] = {
    "topic": TaskSpec(
        "topic", "ag_news", AG_NEWS_LABELS, "accuracy",
        {"World": "world news and politics", "Sports": "sports news",
         "Business": "business and economy news", "Sci/Tech": "science and technology news"},
    ),
    "sentiment": TaskSpec(
        "sentiment", "tweeteval_sentiment", SENTIMENT_LABELS, "macro_recall",
        {"negative": "a negative, unhappy message", "neutral": "a neutral, factual message",
         "positive": "a positive, happy message"},
    ),
    "airline": TaskSpec("airline", "twitter_us_airline_sentiment", AIRLINE_LABELS, "accuracy"),
}


# --------------------------------------------------------------------------- parsing helpers


def _read_lines(path: Path) -> list[str]:
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _int_labels(raw: list[str], path: Path, n_classes: int, offset: int = 0) -> np.ndarray:
    labels = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        try:
            label = int(value.strip()) - offset
        except ValueError:
            label = -1
        if not 0 <= label < n_classes:
            raise DataError(
                f"{path}, line {i + 1}: unknown label {value.strip()!r}; expected one of "
                f"{list(range(offset, n_classes + offset))}. The file is malformed: restore it."
            )
        labels[i] = label
    return labels


def _require_text(text: str, path: Path, line: int) -> str:
    text = text.strip()
    if not text:
        raise DataError(f"{path}, line {line}: empty text. The file is malformed: restore it.")
    return text


# --------------------------------------------------------------------------- loaders


def load_ag_news(split: str, source: DataSource) -> TaskData:
    """AG News canonical CSV: ``"class","title","description"``, 1-based classes, no header."""
    if split not in ("train", "test"):
        raise ValueError(f"AG News has splits 'train' and 'test', not {split!r}.")
    path = source.file(f"ag_news/{split}.csv")
    texts, raw_labels = [], []
    with io.StringIO(read_text(path, newline=""), newline="") as f:  # decoded first: bad UTF-8 is a DataError
        reader = csv.reader(f)
        line_no = 1  # a quoted field may span lines: report the line where the record starts
        for row in reader:
            if len(row) != 3:
                raise DataError(f"{path}, line {line_no}: expected 3 CSV fields "
                                f"(class, title, description), found {len(row)}. Restore the file.")
            raw_labels.append(row[0])
            texts.append(_require_text(f"{row[1]} {row[2]}", path, line_no))
            line_no = reader.line_num + 1
    labels = _int_labels(raw_labels, path, len(AG_NEWS_LABELS), offset=1)
    return TaskData("topic", "ag_news", split, texts, labels, AG_NEWS_LABELS, source.is_sample)


def load_tweeteval_sentiment(split: str, source: DataSource) -> TaskData:
    """TweetEval: ``<split>_text.txt`` and ``<split>_labels.txt``, one item per line."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"TweetEval has splits 'train', 'val' and 'test', not {split!r}.")
    text_path = source.file(f"tweeteval_sentiment/{split}_text.txt")
    label_path = source.file(f"tweeteval_sentiment/{split}_labels.txt")
    lines, raw_labels = _read_lines(text_path), _read_lines(label_path)
    if len(lines) != len(raw_labels):
        raise DataError(f"{text_path} has {len(lines)} lines but {label_path} has "
                        f"{len(raw_labels)}; line i of one must match line i of the other.")
    texts = [_require_text(t, text_path, i + 1) for i, t in enumerate(lines)]
    labels = _int_labels(raw_labels, label_path, len(SENTIMENT_LABELS))
    return TaskData("sentiment", "tweeteval_sentiment", split, texts, labels, SENTIMENT_LABELS,
                    source.is_sample)


def load_stsb(split: str, source: DataSource) -> SimilarityPairs:
    """STS-B: tab-separated, no header; fields 4-6 are score, sentence1, sentence2."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"STS-B has splits 'train', 'dev' and 'test', not {split!r}.")
    path = source.file(f"stsb/sts-{split}.csv")
    s1, s2, scores = [], [], []
    for line_no, line in enumerate(_read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) < 7:
            raise DataError(f"{path}, line {line_no}: expected at least 7 tab-separated fields, "
                            f"found {len(fields)}. Restore the file.")
        try:
            score = float(fields[4])
        except ValueError:
            score = -1.0
        if not 0.0 <= score <= 5.0:
            raise DataError(f"{path}, line {line_no}: score {fields[4]!r} is not a number in [0, 5].")
        scores.append(score)
        s1.append(_require_text(fields[5], path, line_no))
        s2.append(_require_text(fields[6], path, line_no))
    return SimilarityPairs(split, s1, s2, np.asarray(scores), source.is_sample)


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}, line {line_no}: not valid JSON ({e.msg}). Restore the file.") from e
    return rows


def load_scifact(split: str, source: DataSource) -> RetrievalData:
    """SciFact in BEIR format: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""
    if split not in ("train", "test"):
        raise ValueError(f"SciFact has qrels for 'train' and 'test', not {split!r}.")
    corpus_path = source.file("scifact_beir/corpus.jsonl")
    query_path = source.file("scifact_beir/queries.jsonl")
    qrels_path = source.file(f"scifact_beir/qrels/{split}.tsv")
    corpus = {}
    for row in _read_jsonl(corpus_path):
        if "_id" not in row or "text" not in row:
            raise DataError(f"{corpus_path}: a row lacks '_id' or 'text': {str(row)[:80]}")
        corpus[str(row["_id"])] = {"title": row.get("title", ""), "text": row["text"]}
    all_queries = {}
    for row in _read_jsonl(query_path):
        if "_id" not in row or "text" not in row:
            raise DataError(f"{query_path}: a row lacks '_id' or 'text': {str(row)[:80]}")
        all_queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    lines = _read_lines(qrels_path)
    if not lines or lines[0].split("\t")[:2] != ["query-id", "corpus-id"]:
        raise DataError(f"{qrels_path}: expected the header 'query-id<TAB>corpus-id<TAB>score'.")
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3 or not fields[2].strip().lstrip("-").isdigit():
            raise DataError(f"{qrels_path}, line {line_no}: expected 'query-id<TAB>corpus-id<TAB>score'.")
        qid, did = fields[0], fields[1]
        if qid not in all_queries or did not in corpus:
            raise DataError(f"{qrels_path}, line {line_no}: query {qid!r} or document {did!r} "
                            "is not in queries.jsonl / corpus.jsonl.")
        qrels.setdefault(qid, {})[did] = int(fields[2])
    queries = {qid: all_queries[qid] for qid in qrels}
    return RetrievalData(split, corpus, queries, qrels, source.is_sample)


def load_airline(source: DataSource) -> JointLabelData:
    """Twitter US Airline: each tweet carries an airline and a sentiment label."""
    path = source.file("twitter_us_airline_sentiment/Tweets_repaired.csv")
    texts, airlines, sentiments = [], [], []
    with io.StringIO(read_text(path, newline=""), newline="") as f:  # decoded first: bad UTF-8 is a DataError
        reader = csv.DictReader(f)
        missing = {"text", "airline", "airline_sentiment"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: missing column(s) {sorted(missing)}. Restore the file.")
        # Quoted tweets can span several physical lines, so count lines, not records: a record
        # starts on the line after the one where the previous record ended.
        line_no = reader.line_num + 1
        for row in reader:
            for column, names, out in (("airline", AIRLINE_LABELS, airlines),
                                       ("airline_sentiment", SENTIMENT_LABELS, sentiments)):
                if row[column] not in names:
                    raise DataError(f"{path}, line {line_no}: unknown {column} {row[column]!r}; "
                                    f"expected one of {list(names)}.")
                out.append(names.index(row[column]))
            texts.append(_require_text(row["text"] or "", path, line_no))
            line_no = reader.line_num + 1
    return JointLabelData(
        "twitter_us_airline_sentiment", texts,
        {"airline": np.asarray(airlines), "sentiment": np.asarray(sentiments)},
        {"airline": AIRLINE_LABELS, "sentiment": SENTIMENT_LABELS}, source.is_sample,
    )


# --------------------------------------------------------------------------- splits and sampling

VALIDATION_SEED = 20240601  # fixed: the validation split never changes with the experiment seed


def validation_split(data: TaskData, val_fraction: float = 0.05) -> tuple[TaskData, TaskData]:
    """A deterministic, stratified train/validation split carved from a training set."""
    rng = np.random.default_rng(VALIDATION_SEED)
    val_idx = []
    for c in range(len(data.label_names)):
        idx = np.flatnonzero(data.labels == c)
        n_val = int(round(len(idx) * val_fraction))
        val_idx.extend(rng.permutation(idx)[:n_val].tolist())
    val_mask = np.zeros(len(data), dtype=bool)
    val_mask[val_idx] = True
    return data.subset(np.flatnonzero(~val_mask), "train"), data.subset(np.flatnonzero(val_mask), "val")


def _first_k_per_class(data: TaskData, k: int, seed: int) -> np.ndarray:
    """Shuffle each class with a generator keyed on (seed, class) and keep its first k."""
    chosen = [np.random.default_rng([seed, c]).permutation(np.flatnonzero(data.labels == c))[:k]
              for c in range(len(data.label_names))]
    return np.sort(np.concatenate(chosen))


def few_shot_indices(data: TaskData, k: int, seed: int) -> np.ndarray:
    """Indices of k examples per class, the same for every strategy given the seed.

    Because each class is shuffled once per (seed, class) and the first k are kept, the 8-shot
    sample is contained in the 64-shot sample of the same seed.
    """
    for name, count in data.class_counts().items():
        if count < k:
            raise ValueError(f"Class {name!r} of {data.dataset}/{data.split} has {count} "
                             f"examples, fewer than the {k} asked for.")
    return _first_k_per_class(data, k, seed)


def sample_per_class(data: TaskData, k: int | None, seed: int) -> TaskData:
    """k examples per class (see :func:`few_shot_indices`); ``k=None``: the whole set."""
    return data if k is None else data.subset(few_shot_indices(data, k, seed))


def stratified_subset(data: TaskData, n: int | None, seed: int = 0) -> TaskData:
    """A fixed, class-stratified subset of about n items (None: everything)."""
    if n is None or n >= len(data):
        return data
    return data.subset(_first_k_per_class(data, max(1, n // len(data.label_names)), seed))


def load_task(task: str, split: str, source: DataSource) -> TaskData:
    """``train`` / ``val`` / ``test`` for a classification task; ``val`` is carved from train."""
    if task == "topic":
        if split == "test":
            return load_ag_news("test", source)
        train, val = validation_split(load_ag_news("train", source))
        return {"train": train, "val": val}[split]
    if task == "sentiment":
        return load_tweeteval_sentiment(split, source)
    if task == "airline":
        return airline_split(split, source).task("airline")
    raise ValueError(f"Unknown task {task!r}; known: {sorted(TASKS)}")


def airline_split(split: str, source: DataSource) -> JointLabelData:
    """The airline data has no official split: a fixed 70/10/20 train/val/test by shuffled index."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"airline splits are 'train', 'val' and 'test', not {split!r}.")
    data = load_airline(source)
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(data))
    n_train, n_val = int(0.7 * len(data)), int(0.1 * len(data))
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return data.subset(np.sort(parts[split]), split)
