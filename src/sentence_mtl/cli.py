"""The ``sentence-mtl`` command. Errors in user input exit with status 2 and one clear line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import DEFAULT_MODEL


def cmd_embed(args) -> None:
    import numpy as np

    from .encoder import SentenceEncoder
    from .io import InputError, atomic_path, read_input_texts

    output = Path(args.output)
    if output.suffix != ".npy":
        raise InputError(f"--output must end in .npy (got {output}).")
    texts = read_input_texts(args.input)
    encoder = SentenceEncoder.from_pretrained(args.model, pooling=args.pooling,
                                              normalize=not args.no_normalize)
    if args.int8:
        encoder = encoder.quantized_int8()
    embeddings = encoder.encode(texts, batch_size=args.batch_size, show_progress=True)
    with atomic_path(output) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, embeddings)
    print(f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {output}")


def cmd_train(args) -> None:
    from .data import DataSource
    from .training import TrainConfig, Trainer, load_training_data

    config = TrainConfig.from_file(args.config)
    if args.output_dir:
        config.output_dir = args.output_dir
    sources, val_sets = load_training_data(config, DataSource.resolve(args.data_dir))
    import time

    from .io import write_json
    from .results import measure

    trainer = Trainer(config, sources, val_sets)
    with measure() as cost:
        model, log = trainer.run(resume=not args.restart)
    if trainer.accelerator.is_main_process:
        evals = [e for e in log if e["type"] == "eval"]
        print(f"best mean validation metric {trainer.state['best_metric']:.4f} at step "
              f"{trainer.state['best_step']} of {trainer.state['global_step']}; "
              f"model in {trainer.best_dir / 'model'} ({len(evals)} evaluations logged)")
        if args.save_to:
            model.save_pretrained(args.save_to)
            write_json(Path(args.save_to) / "training_summary.json", {
                "train_seconds": cost.seconds, "peak_memory_mb": cost.peak_memory_mb,
                "steps": trainer.state["global_step"], "best_step": trainer.state["best_step"],
                "best_validation_metric": trainer.state["best_metric"],
                "trainable_params": model.parameter_counts()["trainable"],
                "train_examples": {s.name: len(s) for s in sources}, "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
            print(f"saved to {args.save_to}")


def _load_model(path):
    from .io import InputError
    from .multitask import MultiTaskModel

    try:
        return MultiTaskModel.from_pretrained(path)
    except FileNotFoundError as e:
        raise InputError(str(e)) from e


def cmd_evaluate(args) -> None:
    import json

    from .data import DataSource, load_task, stratified_subset
    from .io import InputError
    from .training import evaluate

    model = _load_model(args.model)
    if args.task not in model.tasks:
        raise InputError(f"The model has no {args.task!r} head; it has {model.tasks}.")
    data = stratified_subset(load_task(args.task, args.split, DataSource.resolve(args.data_dir)), args.max_items)
    metrics = evaluate(model, {args.task: data})[args.task]
    print(json.dumps({"task": args.task, "split": args.split, **metrics}, indent=1))
    if args.record:
        _write_record(args, model, data, metrics)


def _write_record(args, model, data, metrics) -> None:
    """Add (or replace) this task's record in a results file, DESIGN.md format."""
    import json

    from .config import get_profile
    from .results import make_record, write_records

    summary_path = Path(args.model) / "training_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    config = model.training_config
    path = Path(args.record)
    records = json.loads(path.read_text()) if path.is_file() else []
    records = [r for r in records if not (r["task"] == args.task and r["split"] == args.split)]
    records.append(make_record(
        experiment=path.stem, task=args.task, dataset=data.dataset, split=args.split, strategy="multitask_model",
        seed=config.get("seed", 0), n_per_class=config.get("train_per_class"), metric=metrics["benchmark_metric"],
        value=metrics["benchmark_value"], n_test=metrics["n"], macro_f1=metrics["macro_f1"],
        accuracy=metrics["accuracy"], confusion_matrix=metrics["confusion_matrix"],
        train_seconds=summary.get("train_seconds"), trainable_params=summary.get("trainable_params"),
        peak_memory_mb=summary.get("peak_memory_mb"), train_examples=summary.get("train_examples"),
        profile=get_profile().name, config=config, is_sample=data.is_sample))
    write_records(path, records)
    print(f"record written to {path}")


def cmd_predict(args) -> None:
    import csv

    from .io import InputError, atomic_path, read_input_texts

    output = Path(args.output)
    if output.suffix != ".csv":
        raise InputError(f"--output must end in .csv (got {output}).")
    texts = read_input_texts(args.input)
    model = _load_model(args.model)
    predictions = model.predict(texts, batch_size=args.batch_size)
    with atomic_path(output) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text"] + [c for t in model.tasks for c in (t, f"{t}_probability")])
            for i, text in enumerate(texts):
                writer.writerow([text] + [v for t in model.tasks for v in (
                    predictions[t]["label"][i], f"{predictions[t]['probability'][i]:.4f}")])
    print(f"wrote {len(texts)} predictions for tasks {model.tasks} to {output}")


def cmd_serve(args) -> None:
    import logging

    import uvicorn

    from .io import InputError
    from .serve import ServiceLimits, create_app

    try:
        limits = ServiceLimits.from_env(max_texts=args.max_texts, max_text_chars=args.max_text_chars,
                                        max_documents=args.max_documents)
    except ValueError as e:
        raise InputError(str(e)) from e
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    app = create_app(args.multitask_model, args.retrieval_model, limits)  # ModelNotFound -> exit 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentence-mtl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    embed = sub.add_parser("embed", help="encode sentences into fixed-length vectors (.npy)")
    embed.add_argument("--input", required=True, help=".txt (one sentence per line) or .csv with a 'text' column")
    embed.add_argument("--output", required=True, help="where to write the embeddings (.npy)")
    embed.add_argument("--model", default=DEFAULT_MODEL, help="model name or path")
    embed.add_argument("--pooling", choices=["mean", "cls", "max"], default="mean")
    embed.add_argument("--no-normalize", action="store_true", help="skip L2 normalisation")
    embed.add_argument("--int8", action="store_true", help="dynamic int8 quantisation (CPU)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.set_defaults(func=cmd_embed)

    train = sub.add_parser("train", help="train a multi-task model from a JSON config (TrainConfig fields)")
    train.add_argument("--config", required=True, help="JSON file with TrainConfig fields")
    train.add_argument("--data-dir", default=None, help="data folder (default: $SENTENCE_MTL_DATA)")
    train.add_argument("--output-dir", default=None, help="overrides the config's output_dir")
    train.add_argument("--save-to", default=None, help="also save the best model to this folder")
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="score a saved multi-task model on one task")
    evaluate.add_argument("--model", required=True, help="folder written by train / save_pretrained")
    evaluate.add_argument("--task", required=True)
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument("--max-items", type=int, default=None, help="stratified subset size")
    evaluate.add_argument("--data-dir", default=None)
    evaluate.add_argument("--record", default=None, help="add the result to this results JSON file")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="label texts with every task head (CSV out)")
    predict.add_argument("--model", required=True)
    predict.add_argument("--input", required=True, help=".txt (one text per line) or .csv with a 'text' column")
    predict.add_argument("--output", required=True, help="CSV: text, then <task>, <task>_probability per task")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.set_defaults(func=cmd_predict)

    serve = sub.add_parser("serve", help="HTTP service: /embed, /predict, /similar, /health (docs at /docs)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--multitask-model", default="models/multitask", help="folder written by `make train`")
    serve.add_argument("--retrieval-model", default="models/retrieval/best",
                       help="folder written by `make retrieval`")
    serve.add_argument("--max-texts", type=int, default=None,
                       help="texts per request (default $SENTENCE_MTL_MAX_TEXTS or 64)")
    serve.add_argument("--max-text-chars", type=int, default=None,
                       help="characters per text (default $SENTENCE_MTL_MAX_TEXT_CHARS or 2000)")
    serve.add_argument("--max-documents", type=int, default=None,
                       help="documents per /similar request (default $SENTENCE_MTL_MAX_DOCUMENTS or 256)")
    serve.set_defaults(func=cmd_serve)
    return parser


def _serve_errors() -> tuple:
    """``serve.ModelNotFound`` once ``serve`` is loaded: looked up lazily, so the other commands
    never import FastAPI (an optional extra)."""
    serve = sys.modules.get(f"{__package__}.serve")
    return (serve.ModelNotFound,) if serve is not None else ()


def main(argv: list[str] | None = None) -> int:
    from .data import DataError
    from .io import InputError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (InputError, DataError, *_serve_errors()) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
