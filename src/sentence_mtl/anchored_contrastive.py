"""Anchored contrastive fine-tuning: a labelled-only recipe for the few-shot regime (notebook 03).

SetFit (Tunstall et al. 2022) fine-tunes the sentence encoder so that texts of one class lie
close together, from pairs of the few labelled examples, then fits a logistic regression. This
recipe keeps that idea and changes two things, both cheap:

- **label descriptions as anchors** (AncSetFit, Pauli et al. 2023): each class's short
  description (``data.TASKS[task].description``) joins every batch as one more member of its
  class, so the clusters form around a meaning the encoder already knows rather than around
  eight arbitrary examples;
- **a supervised contrastive loss** (SupCon, Khosla et al. 2020) over the whole batch instead of
  a cosine loss on independent pairs: each text is pulled towards every member of its class in
  the batch and pushed from all the others at every step.

The classifier is then the label prior on the tuned encoder (``semi_supervised.
label_prior_prototypes`` and ``nearest_prototype``: each class = its examples' mean direction
plus its description's, nearest by cosine), so the description also counts at prediction time. Only the labelled
examples and the label descriptions are read: no unlabeled text.

Hand-written: the loss is a few lines and the batch composition is the point of the exercise.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from .memory import SavedActivations
from .strategies import ContrastiveSettings


def supervised_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """SupCon (Khosla et al. 2020, the L_out form): for each text, minus the mean log-probability
    of its same-class batch members under a softmax over all other members by cosine / temperature."""
    z = nn.functional.normalize(embeddings, dim=-1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    log_prob = logits.masked_fill(self_mask, float("-inf")).log_softmax(dim=1)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    per_text = -log_prob.masked_fill(~positives, 0.0).sum(1) / positives.sum(1).clamp(min=1)
    return per_text[positives.any(1)].mean()


def balanced_batches(labels: np.ndarray, per_class: int, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``steps`` batches of ``per_class`` rows of every class, each class cycled in a fresh shuffled
    order, so every example is seen equally often."""
    pools = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    queues = {c: [] for c in pools}
    batches = []
    for _ in range(steps):
        rows = []
        for c, pool in pools.items():
            take = min(per_class, len(pool))
            while len(queues[c]) < take:
                queues[c].extend(rng.permutation(pool).tolist())
            rows += queues[c][:take]
            queues[c] = queues[c][take:]
        batches.append(np.array(rows))
    return batches


def train_anchored(encoder, texts: list[str], labels: np.ndarray, descriptions: list[str],
                   settings: ContrastiveSettings, seed: int, activations: SavedActivations | None = None) -> list[float]:
    """Fine-tune ``encoder`` (a ``SentenceEncoder``) in place with SupCon on class-balanced batches,
    each holding every label description as an anchor of its class. Returns the loss of each step;
    ``activations`` counts what each step saves for backward (``memory.SavedActivations``)."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    anchor_labels = np.arange(len(descriptions))
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=settings.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, int(settings.warmup_ratio * settings.steps)),
                                                settings.steps)
    losses = []
    encoder.train()
    for rows in balanced_batches(labels, settings.per_class, settings.steps, rng):
        batch_texts = [texts[i] for i in rows] + list(descriptions)
        batch_labels = torch.as_tensor(np.concatenate([labels[rows], anchor_labels]))
        with activations.recording() if activations else contextlib.nullcontext():
            loss = supervised_contrastive_loss(encoder(**encoder.tokenize(batch_texts)), batch_labels,
                                               settings.temperature)
        loss.backward()
        nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    encoder.eval()
    return losses

