"""sentence-mtl: multi-task sentence transformers, measured on real data."""

__version__ = "0.1.0"
