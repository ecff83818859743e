"""Sentiment out of the tweet domain, for evaluation only (never training or model selection).

A sentiment head fine-tuned on tweets is used on reviews, news and support messages; these sets
show what it does there. UCI Sentiment Labelled Sentences (Kotzias et al. 2015): 3,000 Amazon,
IMDb and Yelp review sentences, positive or negative, no neutral; a 3-class model is scored on
its positive-vs-negative decision, and the share of sentences it calls neutral is reported
beside it. Twitter US Airline: customer-service tweets, 3 classes, scored like TweetEval (macro
recall) on the fixed test split of ``data.airline_split``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

from .data import SENTIMENT_LABELS, DataError, DataSource, airline_split
from .evaluation import classification_metrics

NEGATIVE, NEUTRAL, POSITIVE = (SENTIMENT_LABELS.index(n) for n in ("negative", "neutral", "positive"))


@dataclass
class OutOfDomainSet:
    name: str
    texts: list[str]
    labels: np.ndarray  # indices into SENTIMENT_LABELS
    binary: bool  # no neutral items: score the positive-vs-negative decision
    sources: list[str]


def load_uci_sentences(source: DataSource) -> OutOfDomainSet:
    path = source.file("uci_sentiment_sentences/test.csv")
    texts, labels, origins = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"text", "sentiment", "source"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: missing column(s) {sorted(missing)}; expected text,sentiment,source. "
                            f"Restore the file with `make data`.")
        for line, row in enumerate(reader, start=2):
            if row["sentiment"] not in ("negative", "positive"):
                raise DataError(f"{path}, line {line}: sentiment {row['sentiment']!r} is neither 'negative' nor "
                                f"'positive'. Restore the file with `make data`.")
            if not row["text"].strip():
                raise DataError(f"{path}, line {line}: empty text. Restore the file with `make data`.")
            texts.append(row["text"])
            labels.append(SENTIMENT_LABELS.index(row["sentiment"]))
            origins.append(row["source"])
    return OutOfDomainSet("uci_sentences", texts, np.asarray(labels), True, origins)


def load_airline_sentiment(source: DataSource) -> OutOfDomainSet:
    data = airline_split("test", source).task("sentiment")
    return OutOfDomainSet("airline_sentiment", list(data.texts), np.asarray(data.labels), False,
                          ["airline"] * len(data.texts))


LOADERS = {"uci_sentences": load_uci_sentences, "airline_sentiment": load_airline_sentiment}


def correct(probabilities: np.ndarray, dataset: OutOfDomainSet) -> np.ndarray:
    """Per item, 1 where the model is right: on a binary set, its positive-vs-negative decision."""
    if dataset.binary:
        decision = np.where(probabilities[:, POSITIVE] >= probabilities[:, NEGATIVE], POSITIVE, NEGATIVE)
        return (decision == dataset.labels).astype(float)
    return (probabilities.argmax(1) == dataset.labels).astype(float)


def score(probabilities: np.ndarray, dataset: OutOfDomainSet) -> dict:
    """The set's metric (binary accuracy or macro recall), and where the neutral class goes."""
    predicted = probabilities.argmax(1)
    if dataset.binary:
        return {"metric": "binary_accuracy", "value": float(correct(probabilities, dataset).mean()),
                "neutral_share": float((predicted == NEUTRAL).mean()), "n": len(dataset.labels)}
    metrics = classification_metrics(dataset.labels, predicted, len(SENTIMENT_LABELS))
    gold_neutral = dataset.labels == NEUTRAL
    return {"metric": "macro_recall", "value": metrics["macro_recall"],
            "neutral_recall": float((predicted[gold_neutral] == NEUTRAL).mean()) if gold_neutral.any() else None,
            "neutral_share": float((predicted == NEUTRAL).mean()), "n": len(dataset.labels)}
