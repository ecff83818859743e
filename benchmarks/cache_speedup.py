"""What caching frozen parts buys (issue: notebook 03's caching targets), measured in one run:

1. a heads-only epoch on cached embeddings vs re-encoding every epoch (target >= 100x);
2. a top-2-block training step on cached block-4 outputs vs a full forward/backward with the
   lower blocks frozen (target >= 2x).

Usage: python benchmarks/cache_speedup.py [--n 512] [--steps 10]
"""

import argparse

from sentence_mtl.data import DataSource, load_task, sample_per_class
from sentence_mtl.experiments.speed import cache_speedups

TARGETS = {"heads_epoch_ratio": 100.0, "top2_step_ratio": 2.0}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=512, help="AG News training texts (n/4 per class)")
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--data-dir", default=None)
args = parser.parse_args()

train = sample_per_class(load_task("topic", "train", DataSource.resolve(args.data_dir)), args.n // 4, seed=0)
result = cache_speedups(train.texts, train.labels, steps=args.steps)
print(f"{result['n_texts']} AG News texts, batch {result['batch_size']}")
print(f"heads-only epoch: cached {result['heads_epoch_cached_s']:.3f} s, re-encoding {result['heads_epoch_reencode_s']:.2f} s")
print(f"top-2 step: cached lower blocks {result['top2_step_cached_s']:.3f} s, full forward {result['top2_step_full_forward_s']:.3f} s")
print(f"  of which the lower blocks' forward alone {result['top2_lower_forward_s']:.3f} s: no cache of them can "
      f"beat {result['top2_step_ratio_bound']:.2f}x on this machine")
for key, target in TARGETS.items():
    verdict = "meets" if result[key] >= target else "MISSES"
    print(f"{key}: {result[key]:.1f}x ({verdict} the >= {target:g}x target)")
