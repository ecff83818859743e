"""The ``sentence-mtl`` command. Errors in user input exit with status 2 and one clear line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import DEFAULT_MODEL

TRUNCATION = ("Texts longer than the model's max_seq_length ({}) are truncated: the tokens past it are "
              "ignored, so only the beginning of a long text counts.")


def positive_int(value: str) -> int:
    """argparse type: a batch size or item count of 0 or less would mean no work, or garbage."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {number}")
    return number


def port_number(value: str) -> int:
    """argparse type: a TCP port, checked before the models load (seconds) rather than after."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 0 to 65535 (0: any free port), got {number}")
    return number


INT8_HELP = ("run the transformer in ONNX Runtime with int8 weights (per-channel scales): faster on CPU, "
             "quality measured in benchmarks/int8_onnx.py")


EMBED_CHUNK = 4096  # texts read, encoded and written at a time: bounded memory for any input size


def cmd_embed(args) -> None:
    """Streams the input: a pass that checks and counts every line (before the model loads),
    then chunks of :data:`EMBED_CHUNK` texts encoded and appended to the temporary ``.npy``
    (its header written first, for the counted shape), renamed into place once complete."""
    import numpy as np
    from tqdm import tqdm

    from .io import InputError, check_output_path, iter_input_texts, output_file

    output = check_output_path(args.output, ".npy", args.input)
    total = sum(1 for _ in iter_input_texts(args.input))
    from .encoder import SentenceEncoder  # after the checks of the paths: it loads torch (seconds)

    encoder = SentenceEncoder.from_pretrained(args.model, pooling=args.pooling,
                                              normalize=not args.no_normalize)
    if args.int8:
        encoder = encoder.onnx_int8()
    with output_file(output) as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                "shape": (total, encoder.dim)})
        done, chunk = 0, []
        with tqdm(total=total, desc="embed", unit=" texts") as bar:
            for text in iter_input_texts(args.input):
                chunk.append(text)
                if len(chunk) == EMBED_CHUNK or done + len(chunk) == total:
                    f.write(np.ascontiguousarray(encoder.encode(chunk, batch_size=args.batch_size),
                                                 dtype=np.float32).tobytes())
                    done += len(chunk)
                    bar.update(len(chunk))
                    chunk = []
        if done != total or chunk:
            raise InputError(f"Input file {args.input} changed while it was read ({total} texts, then "
                             f"{done + len(chunk)}); run the command again once it is complete.")
    print(f"wrote {total} x {encoder.dim} embeddings to {output}")


def cmd_train(args) -> None:
    from .data import DataSource
    from .training import TrainConfig, Trainer, load_training_data

    from .io import check_output_folder

    config = TrainConfig.from_file(args.config)
    if args.output_dir:
        config.output_dir = args.output_dir
    check_output_folder(config.output_dir, "--output-dir (or the config's output_dir)")
    if args.save_to:
        check_output_folder(args.save_to, "--save-to")
    sources, val_sets = load_training_data(config, DataSource.resolve(args.data_dir))
    import time

    from .io import write_json
    from .results import measure

    from .weight_ensembles import CheckpointAverage, keep_better_on_validation

    average = CheckpointAverage(config.average_last) if config.average_last else None
    trainer = Trainer(config, sources, val_sets, step_callback=average)
    averaging = None
    with measure() as cost:
        model, log = trainer.run(resume=not args.restart)
        if average and trainer.accelerator.is_main_process:
            model, averaging = keep_better_on_validation(model, trainer.state["best_metric"], average, val_sets)
            print(f"checkpoint average of steps {averaging['snapshot_steps']}: mean validation metric "
                  f"{averaging['average_validation_metric']:.4f}; kept the {averaging['kept']}")
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
                "checkpoint_average": averaging, "trainable_params": model.parameter_counts()["trainable"],
                "train_examples": {s.name: len(s) for s in sources}, "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
            print(f"saved to {args.save_to}")


def _load_model(path):
    from .multitask import MultiTaskModel

    return MultiTaskModel.from_pretrained(path)  # a missing or corrupt folder: ModelLoadError, an InputError


def cmd_evaluate(args) -> None:
    import json

    from .data import TASKS, DataSource, load_task, stratified_subset
    from .io import InputError

    existing_records = _read_records(args.record) if args.record else None
    if args.record:  # the record takes the model's training summary: checked before the scoring
        _read_summary(args.model)
    if args.task not in TASKS:
        raise InputError(f"Unknown task {args.task!r}; known tasks: {sorted(TASKS)}.")
    # the data first: a bad data folder is reported before the model is loaded (seconds)
    classes = len(TASKS[args.task].label_names)
    if args.max_items is not None and args.max_items < classes:
        raise InputError(f"--max-items {args.max_items} is fewer than the {classes} classes of {args.task}: the "
                         f"subset is stratified, one item per class at least; give --max-items {classes} or more.")
    # at most --max-items: the same number of items from every class
    data = stratified_subset(load_task(args.task, args.split, DataSource.resolve(args.data_dir)), args.max_items)
    model = _load_model(args.model)
    if args.task not in model.tasks:
        raise InputError(f"The model has no {args.task!r} head; it has {model.tasks}.")
    from .training import evaluate

    metrics = evaluate(model, {args.task: data})[args.task]
    print(json.dumps({"task": args.task, "split": args.split, **metrics}, indent=1))
    if args.record:
        _write_record(args, model, data, metrics, existing_records)


def _read_records(path) -> list[dict]:
    """The records already in a ``--record`` file, checked before any scoring is done."""
    import json

    from .io import InputError, check_output_path
    from .results import REQUIRED_KEYS

    path = check_output_path(path, None, flag="--record")
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"--record {path} is not a results file ({e}); give another path, or fix "
                         "or remove it.") from e
    problem = None if isinstance(records, list) else f"it holds a JSON {type(records).__name__}"
    for i, record in enumerate(records if problem is None else []):
        missing = [k for k in REQUIRED_KEYS if k not in record] if isinstance(record, dict) else list(REQUIRED_KEYS)
        if missing:
            problem = f"record {i} lacks {missing}"
            break
    if problem:
        raise InputError(f"--record {path} is not a results file (a JSON list of records): {problem}. "
                         "Give another path, or fix or remove it.")
    return records


def _read_summary(model_dir) -> dict:
    """The model folder's ``training_summary.json`` ({} without one), checked before any scoring."""
    import json

    from .io import InputError

    summary_path = Path(model_dir) / "training_summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{summary_path} is not valid JSON ({e}). Re-create the model with "
                         "`make train`, or remove that file.") from e
    if not isinstance(summary, dict):
        raise InputError(f"{summary_path} must hold a JSON object. Re-create the model with `make train`, "
                         "or remove that file.")
    return summary


def _write_record(args, model, data, metrics, records) -> list[dict]:
    """Add (or replace) this task's record in a results file (the record format of docs/design.md);
    returns the records now in the file. ``args``: model, record, task and split."""
    import json

    from .config import get_profile
    from .io import InputError
    from .results import make_record, write_records

    summary = _read_summary(args.model)
    config = model.training_config
    path = Path(args.record)
    records = [r for r in records if not (r["task"] == args.task and r["split"] == args.split)]
    records.append(make_record(
        experiment=path.stem, task=args.task, dataset=data.dataset, split=args.split, strategy="multitask_model",
        seed=config.get("seed", 0), n_per_class=config.get("train_per_class"), metric=metrics["benchmark_metric"],
        value=metrics["benchmark_value"], n_test=metrics["n"], macro_f1=metrics["macro_f1"],
        accuracy=metrics["accuracy"], confusion_matrix=metrics["confusion_matrix"],
        train_seconds=summary.get("train_seconds"), trainable_params=summary.get("trainable_params"),
        peak_memory_mb=summary.get("peak_memory_mb"), train_examples=summary.get("train_examples"),
        profile=get_profile().name, config=config, is_sample=data.is_sample))
    try:
        write_records(path, records)
    except OSError as e:
        raise InputError(f"Cannot write {path}: {e.strerror or e}.") from e
    print(f"record written to {path}")
    return records


def cmd_predict(args) -> None:
    import csv

    from .io import check_output_path, escape_formula, output_file, read_input_texts

    output = check_output_path(args.output, ".csv", args.input)
    texts = read_input_texts(args.input)
    model = _load_model(args.model)
    if args.int8:
        model.encoder = model.encoder.onnx_int8()
    predictions = model.predict(texts, batch_size=args.batch_size)
    cell = escape_formula if args.escape_formulas else str
    with output_file(output) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text"] + [c for t in model.tasks for c in (t, f"{t}_probability")])
            for i, text in enumerate(texts):
                writer.writerow([cell(text)] + [v for t in model.tasks for v in (
                    cell(predictions[t]["label"][i]), f"{predictions[t]['probability'][i]:.4f}")])
    print(f"wrote {len(texts)} predictions for tasks {model.tasks} to {output}")


def cmd_serve(args) -> None:
    import logging

    from .io import InputError
    from .serve import ServiceLimits, create_app, run

    try:
        limits = ServiceLimits.from_env(max_texts=args.max_texts, max_text_chars=args.max_text_chars,
                                        max_documents=args.max_documents)
    except ValueError as e:
        raise InputError(str(e)) from e
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    app = create_app(args.multitask_model, args.retrieval_model, limits, int8=args.int8)  # ModelNotFound -> exit 2
    if not run(app, args.host, args.port, limits):  # uvicorn with the connection limits and a request-head timeout
        raise InputError(f"could not listen on {args.host}:{args.port} (the reason is logged above: the port is "
                         "in use, or the host is not an address of this machine); choose another --port or --host.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentence-mtl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    embed = sub.add_parser("embed", help="encode sentences into fixed-length vectors (.npy)",
                           epilog=TRUNCATION.format("256 tokens for the default MiniLM"))
    embed.add_argument("--input", required=True, help=".txt (one sentence per line) or .csv with a 'text' column")
    embed.add_argument("--output", required=True, help="where to write the embeddings (.npy)")
    embed.add_argument("--model", default=DEFAULT_MODEL, help="model name or path")
    embed.add_argument("--pooling", choices=["mean", "cls", "max"], default="mean")
    embed.add_argument("--no-normalize", action="store_true", help="skip L2 normalisation")
    embed.add_argument("--int8", action="store_true", help=INT8_HELP)
    embed.add_argument("--batch-size", type=positive_int, default=32)
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
    evaluate.add_argument("--max-items", type=positive_int, default=None,
                          help="score at most this many items, the same number from every class")
    evaluate.add_argument("--data-dir", default=None)
    evaluate.add_argument("--record", default=None, help="add the result to this results JSON file")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="label texts with every task head (CSV out)",
                             epilog=TRUNCATION.format("set by its training config: 128 tokens for "
                                                      "`make train`'s model"))
    predict.add_argument("--model", required=True)
    predict.add_argument("--input", required=True, help=".txt (one text per line) or .csv with a 'text' column")
    predict.add_argument("--output", required=True, help="CSV: text, then <task>, <task>_probability per task")
    predict.add_argument("--batch-size", type=positive_int, default=64)
    predict.add_argument("--int8", action="store_true", help=INT8_HELP)
    predict.add_argument("--escape-formulas", action="store_true",
                         help="prefix ' to cells that start with = + - @ (or tab, CR), so that a spreadsheet "
                              "shows them as text instead of running them as formulas (CSV injection); "
                              "off by default, so that the text column is the input unchanged")
    predict.set_defaults(func=cmd_predict)

    serve = sub.add_parser("serve", help="HTTP service: /embed, /predict, /similar, /health (docs at /docs)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default: this machine only; the service has no authentication, "
                            "so expose it only through a proxy that authenticates)")
    serve.add_argument("--port", type=port_number, default=8000)
    serve.add_argument("--multitask-model", default="models/multitask", help="folder written by `make train`")
    serve.add_argument("--retrieval-model", default=None,
                       help="folder of a retrieval encoder (default: models/retrieval/best, written by "
                            "`make retrieval`, when it exists; else the pretrained encoder the multi-task "
                            "model started from)")
    serve.add_argument("--max-texts", type=int, default=None,
                       help="texts per request (default $SENTENCE_MTL_MAX_TEXTS or 64)")
    serve.add_argument("--max-text-chars", type=int, default=None,
                       help="characters per text (default $SENTENCE_MTL_MAX_TEXT_CHARS or 2000)")
    serve.add_argument("--max-documents", type=int, default=None,
                       help="documents per /similar request (default $SENTENCE_MTL_MAX_DOCUMENTS or 256)")
    serve.add_argument("--int8", action="store_true", help=INT8_HELP + "; /health says which runtime is in use")
    serve.set_defaults(func=cmd_serve)
    return parser


def _serve_errors() -> tuple:
    """``serve.ModelNotFound`` once ``serve`` is loaded: looked up lazily, so the other commands
    never import FastAPI (an optional extra)."""
    serve = sys.modules.get(f"{__package__}.serve")
    return (serve.ModelNotFound,) if serve is not None else ()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every ``finally`` runs (temporary output
    files are removed) just as on Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    import signal

    # The backbone ships as an installed package, so the command never needs the model hub;
    # users who want a hub model set HF_HUB_OFFLINE=0. The library itself leaves this alone.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)  # `serve`: uvicorn installs its own meanwhile
    try:
        from .data import DataError
        from .io import InputError

        args = build_parser().parse_args(argv)
        try:
            args.func(args)
        except (InputError, DataError, *_serve_errors()) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    except KeyboardInterrupt as e:  # outputs are written through atomic_path: nothing half-written is left
        terminated = isinstance(e, Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
