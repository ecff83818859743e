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
    return parser


def main(argv: list[str] | None = None) -> int:
    from .data import DataError
    from .io import InputError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (InputError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
