"""The saved multi-task model on the official test sets: sample predictions and its main confusions.

    python tools/show_predictions.py [--model models/multitask] [--output results/train_predictions.json]
        [--record results/train_multitask.json]

The last step of ``make train``; see ``sentence_mtl.experiments.predictions``. ``--record`` also
writes each task's test record, as ``sentence-mtl evaluate --record`` does, from the same single
pass over the test sets. docs/results.md and the report render both files.
"""

from __future__ import annotations

import argparse
import sys

from types import SimpleNamespace

from sentence_mtl.cli import _read_records, _write_record
from sentence_mtl.config import REPO_ROOT
from sentence_mtl.data import DataSource, load_task
from sentence_mtl.evaluation import task_metrics
from sentence_mtl.experiments.predictions import prediction_report
from sentence_mtl.io import InputError, write_json
from sentence_mtl.multitask import MultiTaskModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO_ROOT / "models" / "multitask"))
    parser.add_argument("--output", default=str(REPO_ROOT / "results" / "train_predictions.json"))
    parser.add_argument("--record", default=None, help="also write each task's test record to this results file")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        records = _read_records(args.record) if args.record else None
        source = DataSource.resolve(args.data_dir)
        model = MultiTaskModel.from_pretrained(args.model)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    reports = []
    for task in model.tasks:
        data = load_task(task, "test", source)
        probabilities = model.predict_proba(data.texts)[task]
        reports.append(prediction_report(probabilities, data))
        print(f"{task}: {len(data)} test items, accuracy {100 * reports[-1]['accuracy']:.1f}%")
        if args.record:
            where = SimpleNamespace(model=args.model, record=args.record, task=task, split="test")
            records = _write_record(where, model, data, task_metrics(task, data, probabilities), records)
    write_json(args.output, reports)
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
