"""Experiments over the library: what the notebooks run, and the store that remembers it.

The library (``sentence_mtl``) never imports this package; it imports the library.
"""
