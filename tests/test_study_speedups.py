"""benchmarks/study_speedups.py: length grouping must reorder the same examples, and pad less."""

import importlib.util

import numpy as np

from sentence_mtl.config import REPO_ROOT

spec = importlib.util.spec_from_file_location("study_speedups", REPO_ROOT / "benchmarks" / "study_speedups.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_length_grouped_batches_reorder_the_random_ones_and_pad_less():
    lengths = np.random.default_rng(0).integers(10, 120, size=256)
    shuffled = bench.random_batches(len(lengths), 40)
    grouped = bench.length_grouped_batches(lengths, 40)
    assert all(len(b) == bench.BATCH for b in shuffled + grouped)
    assert sorted(np.concatenate(grouped)) == sorted(np.concatenate(shuffled))
    assert bench.padding_share(lengths, grouped) < bench.padding_share(lengths, shuffled) / 2


def test_padding_share_of_equal_lengths_is_zero():
    lengths = np.full(32, 7)
    assert bench.padding_share(lengths, bench.random_batches(32, 2)) == 0
