"""Two levers that could shorten notebook 03 (about 170 encoder fine-tunes on 2 CPU cores),
each measured against the loop as the study runs it, in the same run:

1. seeds in parallel: two processes of one thread each, against one process of two threads
   (the study's setting), same number of full fine-tuning steps in all;
2. length-grouped batches: batches of texts of similar length (each pads less), against the
   study's random batches; the share of padding tokens is printed for both.

Each side times full fine-tuning steps (forward, backward, AdamW) of all-MiniLM-L6-v2 at batch
16, max length 128, on AG News training texts. Prints steps/s of each side and their ratio.

Usage: python benchmarks/study_speedups.py [--n 512] [--steps 20] [--record results/study_speedups.json]
(``--record`` saves the three measurements; docs/results.md shows them).
"""

import argparse
import multiprocessing

import numpy as np
import torch

from sentence_mtl.config import get_profile
from sentence_mtl.data import DataSource, load_task, stratified_subset
from sentence_mtl.experiments.speed import timed_steps
from sentence_mtl.strategy_training import TokenInputs, new_model
from sentence_mtl.results import Recorder, write_records

BATCH = 16
MAX_LENGTH = 128


def random_batches(n: int, steps: int, seed: int = 0) -> list[np.ndarray]:
    order = np.concatenate([np.random.default_rng(seed + e).permutation(n) for e in range(steps * BATCH // n + 1)])
    return [order[i * BATCH:(i + 1) * BATCH] for i in range(steps)]


def length_grouped_batches(lengths: np.ndarray, steps: int, seed: int = 0) -> list[np.ndarray]:
    """Random megabatches of 8 batches, sorted by length inside (as Hugging Face's ``group_by_length``)."""
    flat = np.concatenate(random_batches(len(lengths), steps, seed))
    mega = 8 * BATCH
    grouped = np.concatenate([chunk[np.argsort(-lengths[chunk], kind="stable")]
                              for chunk in np.split(flat, range(mega, len(flat), mega))])
    return [grouped[i * BATCH:(i + 1) * BATCH] for i in range(steps)]


def padding_share(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    return 1 - sum(lengths[b].sum() for b in batches) / sum(BATCH * lengths[b].max() for b in batches)


def steps_per_second(texts: list[str], labels: np.ndarray, batches: list[np.ndarray], threads: int) -> float:
    """Full fine-tuning steps on ``batches`` in this process; the first two steps are warm-up."""
    torch.set_num_threads(threads)
    model = new_model(0, MAX_LENGTH).unfreeze("encoder", "heads")
    inputs = TokenInputs(model.encoder.tokenizer, texts, MAX_LENGTH)
    times = timed_steps(model, inputs, batches, torch.as_tensor(labels), "topic")
    return (len(batches) - 2) / sum(times[2:])


def in_parallel(texts, labels, batches, processes: int) -> float:
    """Aggregate steps/s of ``processes`` one-thread processes running at the same time."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        rates = pool.starmap(steps_per_second, [(texts, labels, batches, 1)] * processes)
    return float(sum(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="AG News training texts")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per side (plus 2 warm-up)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, help="write the measurements to this JSON file")
    args = parser.parse_args()
    train = stratified_subset(load_task("topic", "train", DataSource.resolve(args.data_dir)), args.n)
    lengths = TokenInputs(new_model(0, MAX_LENGTH).encoder.tokenizer, train.texts, MAX_LENGTH).lengths
    shuffled = random_batches(len(train), args.steps + 2)
    grouped = length_grouped_batches(lengths, args.steps + 2)

    study = steps_per_second(train.texts, train.labels, shuffled, threads=2)
    parallel = in_parallel(train.texts, train.labels, shuffled, processes=2)
    by_length = steps_per_second(train.texts, train.labels, grouped, threads=2)

    print(f"{len(train)} AG News texts, batch {BATCH}, max length {MAX_LENGTH}, {args.steps} timed steps per side")
    print(f"  study's loop (1 process x 2 threads, random batches): {study:.2f} steps/s, "
          f"{100 * padding_share(lengths, shuffled[2:]):.0f}% of batch tokens are padding")
    print(f"  seeds in parallel (2 processes x 1 thread):           {parallel:.2f} steps/s in all "
          f"-> {parallel / study:.2f}x")
    print(f"  length-grouped batches (1 process x 2 threads):       {by_length:.2f} steps/s, "
          f"{100 * padding_share(lengths, grouped[2:]):.0f}% padding -> {by_length / study:.2f}x")
    if args.record:
        config = {"n_texts": len(train), "timed_steps": args.steps, "batch_size": BATCH, "max_seq_length": MAX_LENGTH}
        recorder = Recorder("study_speedups", get_profile(), config)
        for lever, rate, batches in (("study_loop", study, shuffled), ("parallel_seeds", parallel, shuffled),
                                     ("length_grouped", by_length, grouped)):
            recorder.add(task="finetune_step", dataset="ag_news", split="train", strategy=lever,
                         metric="steps_per_second", value=rate, speedup=rate / study,
                         padding_share=padding_share(lengths, batches[2:]))
        write_records(args.record, recorder.records)
        print(f"recorded to {args.record}")


if __name__ == "__main__":
    main()
