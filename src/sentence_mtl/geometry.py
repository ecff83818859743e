"""The shape of the embedding space: 2-D maps (PCA, t-SNE, UMAP) and nearest neighbours."""

from __future__ import annotations

import warnings

import numpy as np


def project_2d(embeddings: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """PCA (linear, global), t-SNE (local neighbourhoods), UMAP (local + some global)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap/numba chatter about parallelism and seeds
        import umap

        perplexity = float(min(30, max(2, (len(embeddings) - 1) // 3)))
        return {
            "PCA": PCA(n_components=2, random_state=seed).fit_transform(embeddings),
            "t-SNE": TSNE(n_components=2, perplexity=perplexity, init="pca", metric="cosine",
                          random_state=seed).fit_transform(embeddings),
            "UMAP": umap.UMAP(n_neighbors=min(15, len(embeddings) - 1), metric="cosine",
                              random_state=seed).fit_transform(embeddings),
        }


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(min=1e-12)
    b = a if b is None else b / np.linalg.norm(b, axis=1, keepdims=True).clip(min=1e-12)
    return a @ b.T


def nearest_neighbours(queries: np.ndarray, corpus: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine scores) of the k most similar corpus rows for each query, best first."""
    scores = cosine_matrix(queries, corpus)
    top = np.argsort(-scores, axis=1)[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)
