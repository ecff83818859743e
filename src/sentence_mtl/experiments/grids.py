"""What each notebook runs in each profile, as data: the only place sizes, seeds, step budgets
and which strategies run at which size are set (a notebook reads ``grid_for(profile)`` and never
branches on the profile's name).

``Profile`` (``config.py``) sizes what every notebook shares (seeds, probe sizes, test caps);
the grids below add what one study needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DEFAULT_MODEL, Profile

# ------------------------------------------------------------------ 01: embeddings


@dataclass(frozen=True)
class EmbeddingGrid:
    check_published_sts: bool  # the full STS-B test set: mean pooling must reproduce the published number


EMBEDDING_GRIDS = {"smoke": EmbeddingGrid(False), "standard": EmbeddingGrid(True), "large": EmbeddingGrid(True)}

# ------------------------------------------------------------------ 02: heads on one encoder


@dataclass(frozen=True)
class HeadsGrid:
    airline_train: int  # airline tweets for the joint airline + sentiment heads
    airline_epochs: int


HEADS_GRIDS = {"smoke": HeadsGrid(60, 1), "standard": HeadsGrid(3000, 3), "large": HeadsGrid(3000, 3)}

# ------------------------------------------------------------------ 03: freezing strategies


@dataclass(frozen=True)
class HeadlineGrid:
    """The comparisons that answer "what to freeze": few strategies, many seeds, the full official
    test sets, and every predicted label kept, so each difference is paired on seeds and items.

    Every run also scores a stratified validation subset (``val_items`` per task), on which the
    decision rule of ``headline.recommendation`` chooses; the test sets only evaluate."""

    strategies: tuple[str, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    val_items: int
    setfit_steps: tuple[tuple[int, int], ...]  # (examples per class, pair batches of 16)
    setfit_learning_rate: float  # the body's, chosen on validation (tools/few_shot_validation.py)

    def runs(self) -> list[tuple[str, int | None, int]]:
        """(strategy, size, seed), seed by seed, so that a stopped grid leaves whole seeds; then
        one head frozen in sequence (``sequential``, at the study's ``sequential_size``) per seed."""
        return ([(name, k, seed) for seed in self.seeds for k in self.sizes for name in self.strategies]
                + [("sequential", None, seed) for seed in self.seeds])


HEADLINE_STRATEGIES = ("label_prior", "frozen_backbone", "self_training", "top2_unfrozen", "full_finetune",
                       "lp_ft", "anchored_contrastive", "setfit")


@dataclass(frozen=True)
class StudyGrid:
    """Sizes, seeds, steps and strategies of the freezing study."""

    sizes: tuple[int | None, ...]  # examples per class for the cheap (frozen / cached) strategies
    finetune_sizes: tuple[int, ...]  # sizes at which every encoder-changing strategy runs
    target_sizes: tuple[int, ...]  # extra sizes for full fine-tuning and LP-FT (published comparisons)
    seeds: tuple[int, ...]  # seeds above 32 per class, and for the encoder-changing strategies
    small_seeds: tuple[int, ...]  # seeds of the cheap strategies at 32 per class and fewer
    steps: tuple[tuple[int, int], ...]  # (examples per class, optimiser steps), both tasks together
    batch_size: int
    test_subset: int  # test items per task for strategies that change the encoder
    setfit_sizes: tuple[int, ...]
    setfit_steps: tuple[tuple[int, int], ...]  # (examples per class, pair batches of 16)
    peer_seeds: tuple[int, ...]  # seeds of SetFit and of our recipe against it (anchored_contrastive)
    sequential_size: int
    cache_bench_texts: int  # AG News texts timed by the cache benchmark
    cache_bench_steps: int
    cost_size: int  # examples per class of the cost-vs-quality figure
    max_seq_length: int = 128
    contrastive_steps: int | None = None  # anchored_contrastive's steps; None: the strategy's own
    unlabeled_peer_sizes: tuple[int, ...] = (8,)  # sizes of anchored_self_training (the low-data end)
    model_name: str = DEFAULT_MODEL
    headline: HeadlineGrid | None = None
    tasks: tuple[str, ...] = ("topic", "sentiment")
    encoder_strategies: tuple[str, ...] = ("full_finetune", "gradual_unfreezing", "llrd_0.95", "llrd_2.6",
                                           "lora", "lp_ft")
    target_strategies: tuple[str, ...] = ("full_finetune", "lp_ft")
    cached_strategies: tuple[str, ...] = ("top1_unfrozen", "top2_unfrozen")

    def seeds_for(self, k: int | None) -> tuple[int, ...]:
        return self.small_seeds if k is not None and k <= 32 else self.seeds

    def steps_for(self, k: int) -> int:
        return dict(self.steps)[k]

    def cheap_runs(self, labelled_only: bool = False) -> list[tuple[int | None, int]]:
        """(size, seed) of the strategies that train at most a head; ``labelled_only``: sizes
        with a few-shot sample (not the whole training set)."""
        return [(k, s) for k in self.sizes if not (labelled_only and k is None) for s in self.seeds_for(k)]

    def cached_runs(self) -> list[tuple[str, int, int]]:
        return [(name, k, s) for name in self.cached_strategies for k, s in self.cheap_runs(labelled_only=True)]

    def finetune_runs(self) -> list[tuple[str, int, int]]:
        runs = [(name, k, s) for k in self.finetune_sizes for name in self.encoder_strategies
                for s in self.seeds_for(k)]
        return runs + [(name, k, s) for k in self.target_sizes for name in self.target_strategies
                       for s in self.seeds]

    def peer_runs(self) -> list[tuple[str, int, int]]:
        """(task, size, seed) of SetFit and of our labelled-only recipe against it."""
        return [(t, k, s) for t in self.tasks for k in self.setfit_sizes for s in self.peer_seeds]

    def unlabeled_peer_runs(self) -> list[tuple[str, int, int]]:
        """(task, size, seed) of the recipe with self-training on top, a subset of ``peer_runs``."""
        return [(t, k, s) for t, k, s in self.peer_runs() if k in self.unlabeled_peer_sizes]


GRIDS = {
    "smoke": StudyGrid(sizes=(8,), finetune_sizes=(8,), target_sizes=(), seeds=(0,), small_seeds=(0,),
                       steps=((8, 4),), batch_size=8, test_subset=48, setfit_sizes=(8,), setfit_steps=((8, 2),),
                       peer_seeds=(0,),
                       sequential_size=8, cache_bench_texts=32, cache_bench_steps=3, cost_size=8,
                       max_seq_length=64, contrastive_steps=2,
                       headline=HeadlineGrid(HEADLINE_STRATEGIES, sizes=(8,), seeds=(0, 1), val_items=48,
                                             setfit_steps=((8, 2),), setfit_learning_rate=2e-5)),
    "standard": StudyGrid(sizes=(8, 32, 64, 128, 512, None), finetune_sizes=(8, 32, 128, 512), target_sizes=(64,),
                          seeds=(0, 1, 2), small_seeds=(0, 1, 2, 3, 4),
                          steps=((8, 32), (32, 48), (64, 64), (128, 80), (512, 128)),
                          batch_size=16, test_subset=800, setfit_sizes=(8, 32, 64),
                          setfit_steps=((8, 80), (32, 80), (64, 60)), peer_seeds=(0, 1, 2), sequential_size=64,
                          cache_bench_texts=512, cache_bench_steps=10, cost_size=32,
                          headline=HeadlineGrid(HEADLINE_STRATEGIES, sizes=(8, 64), seeds=tuple(range(10)),
                                                val_items=2000, setfit_steps=((8, 80), (64, 60)),
                                                setfit_learning_rate=2e-5)),
    "large": StudyGrid(sizes=(8, 32, 64, 128, 512, None), finetune_sizes=(8, 32, 64, 128, 512), target_sizes=(),
                       seeds=(0, 1, 2, 3, 4), small_seeds=(0, 1, 2, 3, 4),
                       steps=((8, 40), (32, 80), (64, 120), (128, 200), (512, 600)),
                       batch_size=16, test_subset=4000, setfit_sizes=(8, 32, 64),
                       setfit_steps=((8, 80), (32, 320), (64, 640)), peer_seeds=(0, 1, 2, 3, 4), sequential_size=256,
                       cache_bench_texts=512, cache_bench_steps=10, cost_size=32),
}

# ------------------------------------------------------------------ 04: the multi-task loop


@dataclass(frozen=True)
class StudySize:
    """How much data each run of the multi-task study sees (training examples are per class)."""

    train_per_class: tuple[tuple[str, int], ...]
    val_per_task: int
    test_per_task: int  # a fixed stratified subset of the official test set, same for every run
    batch_size: int
    steps_per_eval: int


@dataclass(frozen=True)
class LoopHeadline:
    """Notebook 04's main contrast at many seeds on the full official test sets, every predicted
    label kept: the configuration chosen on validation, the base configuration, and one
    single-task model per task given the same steps. ``test_cap``: None for the full test sets
    (a profile's cap on test items applies on top)."""

    chosen: str
    base: str
    seeds: tuple[int, ...]

    def runs(self) -> list[tuple[str, int]]:
        """(configuration, seed), seed by seed, so a stopped grid leaves whole seeds."""
        return [(name, seed) for seed in self.seeds
                for name in (self.chosen, self.base, "single_task_topic", "single_task_sentiment")]


LOOP_HEADLINES = {
    "smoke": LoopHeadline("round_robin+equal", "proportional+equal", seeds=(0, 1)),
    "standard": LoopHeadline("round_robin+equal", "proportional+equal", seeds=tuple(range(10))),
    "large": LoopHeadline("round_robin+equal", "proportional+equal", seeds=tuple(range(10))),
}

STUDY_SIZES = {
    "smoke": StudySize((("topic", 8), ("sentiment", 8)), 32, 64, batch_size=8, steps_per_eval=4),
    "standard": StudySize((("topic", 256), ("sentiment", 128)), 200, 600, batch_size=32, steps_per_eval=10),
    "large": StudySize((("topic", 2048), ("sentiment", 2048)), 1000, 4000, batch_size=32, steps_per_eval=10),
}

# ------------------------------------------------------------------ 05: retrieval


@dataclass(frozen=True)
class RetrievalGrid:
    n_val: int  # training queries held out for validation
    batch_size: int
    test_queries: int | None  # None: every test query
    train_queries: int | None
    extra_documents: int | None  # None: the whole corpus; else judged documents plus this many others
    shared_registry: bool  # promote into models/retrieval (what the service loads)


RETRIEVAL_GRIDS = {
    "smoke": RetrievalGrid(4, 8, test_queries=8, train_queries=48, extra_documents=200, shared_registry=False),
    "standard": RetrievalGrid(100, 32, None, None, None, shared_registry=True),
    "large": RetrievalGrid(100, 32, None, None, None, shared_registry=False),
}


@dataclass(frozen=True)
class RetrievalRecipe:
    """One way of fine-tuning for retrieval: the names of its records (the dense encoder alone, its
    score fusion and its reciprocal-rank fusion with BM25) and its ``RetrievalConfig`` settings."""

    dense: str
    hybrid: str
    rrf: str
    settings: tuple[tuple[str, object], ...] = ()


RETRIEVAL_RECIPES = (
    RetrievalRecipe("finetuned_mnrl", "hybrid_bm25_finetuned", "rrf_bm25_finetuned"),  # one epoch, in-batch negatives
    RetrievalRecipe("finetuned_bm25_negatives", "hybrid_bm25_negatives", "rrf_bm25_negatives",
                    (("hard_negatives", True), ("epochs", 2), ("select_epoch", True))),
)


def grid_for(table: dict, profile: Profile):
    """``table``'s entry for ``profile``, with an error naming the profiles it knows."""
    if profile.name not in table:
        raise ValueError(f"no grid for profile {profile.name!r}; known: {sorted(table)}")
    return table[profile.name]
