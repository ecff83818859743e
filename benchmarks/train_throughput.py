"""Training throughput (sentences/s) of our multi-task loop vs the Hugging Face `Trainer`
fine-tuning `AutoModelForSequenceClassification`, same data, sequence length and batch size.
The peer runs twice: with its default random batches, and at its best setting for this
comparison, length-grouped batches (``train_sampling_strategy="group_by_length"``, what our
loop does); both ratios are printed and written with ``--record``.

Run: ``python benchmarks/train_throughput.py [--n 512] [--batch-size 32] [--max-seq-length 128]``.
Both fine-tune all of all-MiniLM-L6-v2 on the same AG News training texts for one epoch, in
one process, alternated ``--repeats`` times; the median sentences/s and the ratio are printed.
Only optimisation steps are timed (no evaluation, no saving) on either side.
"""

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from sentence_mtl.config import DEFAULT_MODEL
from sentence_mtl.data import DataSource, load_task, stratified_subset
from sentence_mtl.encoder import resolve_model_path
from sentence_mtl.training import Source, TrainConfig, Trainer, read_log


def ours(train, val, args) -> float:
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(tasks=("topic",), batch_size=args.batch_size, max_seq_length=args.max_seq_length,
                             epochs=1, log_every=1, early_stopping_patience=None, output_dir=out)
        trainer = Trainer(config, [Source.from_task_data(train)], {"topic": val}, show_progress=False)
        trainer.run(resume=False)
        steps = [e for e in read_log(f"{out}/log.jsonl") if e["type"] == "step"]
        # time from the end of step 1 to the end of the last step: excludes warm-up and evaluation
        examples = sum(e["examples"] for e in steps[1:])
        return examples / (steps[-1]["seconds"] - steps[0]["seconds"])


def hugging_face(train, args, sampling: str = "random") -> float:
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer as HFTrainer, TrainerCallback, TrainingArguments)

    path = resolve_model_path(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
    data = Dataset.from_dict({"text": train.texts, "label": train.labels.tolist()}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_seq_length), batched=True,
        remove_columns=["text"])

    class StepTimer(TrainerCallback):  # same window as ours: end of step 1 to end of the last step
        times = []

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch_size,
                                      num_train_epochs=1, learning_rate=5e-5, warmup_steps=0.1,
                                      weight_decay=0.01, save_strategy="no", eval_strategy="no",
                                      report_to=[], logging_strategy="no", use_cpu=True,
                                      dataloader_num_workers=0, disable_tqdm=True,
                                      train_sampling_strategy=sampling)
        timer = StepTimer()
        timer.times = []
        HFTrainer(model=model, args=arguments, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer),
                  callbacks=[timer]).train()
    n_batches = len(timer.times)
    examples = len(train) - min(args.batch_size, len(train))  # all but the first batch
    return examples / (timer.times[-1] - timer.times[0]) if n_batches > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, help="write the speeds and ratios to this JSON file")
    args = parser.parse_args()
    source = DataSource.resolve(args.data_dir)
    train = stratified_subset(load_task("topic", "train", source), args.n)
    val = stratified_subset(load_task("topic", "val", source), 8)
    runs = {"hugging_face_trainer": [], "hugging_face_trainer_group_by_length": [], "ours": []}
    for _ in range(args.repeats):
        runs["hugging_face_trainer"].append(hugging_face(train, args))
        runs["hugging_face_trainer_group_by_length"].append(hugging_face(train, args, "group_by_length"))
        runs["ours"].append(ours(train, val, args))
    speed = {k: float(np.median(v)) for k, v in runs.items()}
    print(f"{len(train)} AG News texts, batch {args.batch_size}, max length {args.max_seq_length}, "
          f"{torch.get_num_threads()} threads, {args.repeats} alternated repeats (median)")
    for name, value in speed.items():
        print(f"  {name:38s} {value:7.1f} sentences/s   runs {np.round(runs[name], 1).tolist()}")
    ratios = {peer: speed["ours"] / speed[peer] for peer in runs if peer != "ours"}
    for peer, ratio in ratios.items():
        print(f"  ratio ours / {peer}: {ratio:.2f}x")
    print(json.dumps(speed))
    if args.record:
        from sentence_mtl.io import write_json

        write_json(args.record, {"sentences_per_second": speed, "runs": runs, "ratio_ours_over": ratios,
                                 "n_texts": len(train), "batch_size": args.batch_size,
                                 "max_seq_length": args.max_seq_length, "threads": torch.get_num_threads(),
                                 "repeats": args.repeats})


if __name__ == "__main__":
    main()
