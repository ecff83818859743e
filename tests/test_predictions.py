"""The trained model's sample predictions and confusions are read off its probabilities."""

import numpy as np

from sentence_mtl.data import TaskData
from sentence_mtl.experiments.predictions import prediction_report
from sentence_mtl.reporting.tables import predictions


def test_report_samples_right_and_wrong_and_ranks_confusions():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 10)
    predicted = labels.copy()
    predicted[:4] = 1  # four class-0 items read as class 1
    predicted[10] = 2  # one class-1 item read as class 2
    probabilities = np.full((30, 3), 0.1)
    probabilities[np.arange(30), predicted] = 0.8
    probabilities[0, 1] = 0.95  # the surest mistake
    data = TaskData("topic", "fake", "test", [f"text {i}" for i in range(30)], labels, ("a", "b", "c"))
    report = prediction_report(probabilities, data, per_outcome=3)
    assert report["accuracy"] == 25 / 30
    assert [e["correct"] for e in report["examples"]] == [True] * 3 + [False] * 3
    top = report["confusions"][0]
    assert (top["gold"], top["predicted"], top["count"], top["share_of_gold"]) == ("a", "b", 4, 0.4)
    assert top["examples"][0]["text"] == "text 0" and top["examples"][0]["probability"] == 0.95
    tables = predictions([report])
    assert "| topic | text 0 |" in tables["examples"] or "text 0" in tables["examples"]
    assert "| topic | *a* as *b* | 4 | 40.0% |" in tables["confusions"]
