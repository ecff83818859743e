"""Paths and run profiles.

One switch, ``SENTENCE_MTL_PROFILE`` (``smoke`` | ``standard`` | ``large``), sizes every
experiment. ``smoke`` writes to a git-ignored folder so a CI run never overwrites the
committed ``standard`` results and figures.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA_DIR = REPO_ROOT / "data" / "sample"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Profile:
    """How big a run is. Every experiment reads its sizes from here, nowhere else."""

    name: str
    seeds: tuple[int, ...]
    n_per_class: tuple[int | None, ...]  # few-shot sizes; None = the whole training set
    max_train_per_task: int | None  # cap on the training set ("whole" = up to this)
    max_test_per_task: int | None  # None = the full official test set
    epochs: int
    viz_points: int  # points shown in PCA / t-SNE / UMAP plots
    throughput_sentences: int

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        seeds=(0,),
        n_per_class=(8,),
        max_train_per_task=64,
        max_test_per_task=64,
        epochs=1,
        viz_points=120,
        throughput_sentences=64,
    ),
    "standard": Profile(
        name="standard",
        seeds=(0, 1, 2),
        n_per_class=(8, 64, 512, None),
        max_train_per_task=None,
        max_test_per_task=None,
        epochs=3,
        viz_points=2000,
        throughput_sentences=1024,
    ),
    "large": Profile(
        name="large",
        seeds=(0, 1, 2, 3, 4),
        n_per_class=(8, 32, 64, 128, 512, None),
        max_train_per_task=None,
        max_test_per_task=None,
        epochs=5,
        viz_points=7600,
        throughput_sentences=4096,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    name = name or os.environ.get("SENTENCE_MTL_PROFILE", "standard")
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}. Set SENTENCE_MTL_PROFILE to one of {sorted(PROFILES)}."
        )
    return PROFILES[name]


def output_root(profile: Profile) -> Path:
    """Only ``standard`` writes the committed folders; other profiles write under runs/<name>/.
    ``SENTENCE_MTL_OUTPUT_DIR`` sends every profile's results and figures elsewhere (``make verify``
    re-executes the notebooks without touching the committed files)."""
    if os.environ.get("SENTENCE_MTL_OUTPUT_DIR"):
        return Path(os.environ["SENTENCE_MTL_OUTPUT_DIR"])
    if profile.name == "standard":
        return REPO_ROOT
    return REPO_ROOT / "runs" / profile.name


def results_dir(profile: Profile) -> Path:
    path = output_root(profile) / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(profile: Profile) -> Path:
    path = output_root(profile) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = Path(os.environ.get("SENTENCE_MTL_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
