"""Weight-space ensembles of a fine-tuned model and its starting point (WiSE-FT).

Wortsman et al. 2022 ("Robust fine-tuning of zero-shot models", CVPR) interpolate the weights:
(1 - alpha) * start + alpha * fine-tuned. Fine-tuning moves the encoder towards the training
domain; stepping part of the way back keeps more of what pretraining knew, which often holds
up better on other domains at little cost in domain. Here the start is the pretrained encoder
with linear-probe heads (a logistic regression fitted on its frozen embeddings of the same
training texts), so alpha = 0 is the frozen-encoder baseline and alpha = 1 the fine-tuned
model; both ends share one architecture, which interpolation needs.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .encoder import SentenceEncoder
from .multitask import MultiTaskModel


def interpolate(start: nn.Module, end: nn.Module, alpha: float) -> nn.Module:
    """A copy of ``end`` whose floating-point weights are (1 - alpha) * start + alpha * end."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    a, b = start.state_dict(), end.state_dict()
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in b):
        raise ValueError("the two models differ in architecture: only models of one architecture interpolate")
    mixed = copy.deepcopy(end)
    mixed.load_state_dict({k: torch.lerp(a[k], b[k], alpha) if b[k].is_floating_point() else b[k] for k in b})
    return mixed


def pretrained_start(fine_tuned: MultiTaskModel, pretrained_name: str, texts: dict[str, list[str]],
                     labels: dict[str, np.ndarray], C: float = 1.0) -> MultiTaskModel:
    """The fine-tuned model's architecture with the pretrained encoder ``pretrained_name`` back in
    place and each head set to a logistic regression on that encoder's embeddings of ``texts[task]``."""
    from sklearn.linear_model import LogisticRegression

    start = copy.deepcopy(fine_tuned)
    encoder = fine_tuned.encoder
    pretrained = SentenceEncoder.from_pretrained(pretrained_name, normalize=encoder.normalize,
                                                 max_seq_length=encoder.max_seq_length)
    start.encoder.load_state_dict(pretrained.state_dict())
    for task in start.tasks:
        linear = start.heads[task].net[-1]
        if len(start.heads[task].net) != 2:
            raise ValueError(f"the {task!r} head has a hidden layer: a linear probe cannot stand in for it")
        if sorted(set(np.asarray(labels[task]).tolist())) != list(range(linear.out_features)):
            raise ValueError(f"the {task!r} training labels do not cover its {linear.out_features} classes")
        features = start.encoder.encode(texts[task])
        probe = LogisticRegression(C=C, max_iter=3000).fit(features, labels[task])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(probe.coef_).to(linear.weight.dtype))
            linear.bias.copy_(torch.from_numpy(probe.intercept_).to(linear.bias.dtype))
    return start
