"""The saved multi-task model on the official test sets: sample predictions and its main confusions.

    python tools/show_predictions.py [--model models/multitask] [--output results/train_predictions.json]

The last step of ``make train`` (after ``sentence-mtl evaluate``); see
``sentence_mtl.experiments.predictions``. The README and the report render the file.
"""

from __future__ import annotations

import argparse
import sys

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.data import DataSource, load_task
from sentence_mtl.experiments.predictions import prediction_report
from sentence_mtl.io import InputError, write_json
from sentence_mtl.multitask import MultiTaskModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO_ROOT / "models" / "multitask"))
    parser.add_argument("--output", default=str(REPO_ROOT / "results" / "train_predictions.json"))
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        source = DataSource.resolve(args.data_dir)
        model = MultiTaskModel.from_pretrained(args.model)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    reports = []
    for task in model.tasks:
        data = load_task(task, "test", source)
        reports.append(prediction_report(model.predict_proba(data.texts)[task], data))
        print(f"{task}: {len(data)} test items, accuracy {100 * reports[-1]['accuracy']:.1f}%")
    write_json(args.output, reports)
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
