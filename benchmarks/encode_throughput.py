"""Sentences/s of our encoder, sentence-transformers and our int8 mode on the same texts.

Run: ``python benchmarks/encode_throughput.py [--n 1024] [--batch-size 32] [--repeats 3]``.
All three run in one process, alternated, and ratios are printed against sentence-transformers.
Texts are STS-B test sentences (real data; ``SENTENCE_MTL_DATA`` must point at the data folder).
"""

import argparse
import json

import numpy as np
import torch

from sentence_mtl.config import DEFAULT_MODEL
from sentence_mtl.data import DataSource, load_stsb
from sentence_mtl.encoder import SentenceEncoder, resolve_model_path
from sentence_mtl.throughput import compare_throughput, sentence_transformers_peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1024, help="number of sentences")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    pairs = load_stsb("test", DataSource.resolve(args.data_dir))
    texts = (pairs.sentences1 + pairs.sentences2)[: args.n]
    ours = SentenceEncoder.from_pretrained(DEFAULT_MODEL)
    int8 = ours.quantized_int8()
    contenders = {
        "sentence_transformers": sentence_transformers_peer(resolve_model_path(DEFAULT_MODEL), args.batch_size),
        "ours_fp32": lambda t: ours.encode(t, batch_size=args.batch_size),
        "ours_int8": lambda t: int8.encode(t, batch_size=args.batch_size),
    }
    diff = np.abs(contenders["ours_fp32"](texts[:256]) - contenders["sentence_transformers"](texts[:256])).max()
    results = compare_throughput(contenders, texts, repeats=args.repeats)
    print(f"{len(texts)} STS-B sentences, batch size {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.repeats} alternated repeats (median)")
    for name, r in results.items():
        print(f"  {name:22s} {r['sentences_per_second']:8.1f} sentences/s   "
              f"ratio vs sentence-transformers {r['ratio_vs_sentence_transformers']:.2f}x")
    print(f"  ours_int8 vs ours_fp32: {results['ours_int8']['sentences_per_second'] / results['ours_fp32']['sentences_per_second']:.2f}x")
    print(f"  max |ours - sentence-transformers| on 256 sentences: {diff:.2e}")
    print(json.dumps({k: round(v["sentences_per_second"], 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
