"""Weight-space ensembles: a fine-tuned model with its starting point (WiSE-FT), and a run's
own checkpoints averaged (checkpoint averaging).

Wortsman et al. 2022 ("Robust fine-tuning of zero-shot models", CVPR) interpolate the weights:
(1 - alpha) * start + alpha * fine-tuned. Fine-tuning moves the encoder towards the training
domain; stepping part of the way back keeps more of what pretraining knew, which often holds
up better on other domains at little cost in domain. Here the start is the pretrained encoder
with linear-probe heads (a logistic regression fitted on its frozen embeddings of the same
training texts), so alpha = 0 is the frozen-encoder baseline and alpha = 1 the fine-tuned
model; both ends share one architecture, which interpolation needs.

Checkpoint averaging (Izmailov et al. 2018, "Averaging weights leads to wider optima and better
generalization", UAI; Kaddour 2022, "Stop wasting my time! Saving days of ImageNet and BERT
training with latest weight averaging") takes the uniform mean of the weights a run passed
through near its end: the points lie in one basin, and their mean sits nearer its centre than
any one of them, which tends to generalise better than the last or the best checkpoint.
"""

from __future__ import annotations

import copy
from collections import deque

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


class CheckpointAverage:
    """A ``Trainer`` step callback that keeps the weights of the last ``n`` snapshots, one every
    ``every`` steps and one at the last step, and hands back their uniform average.

    Snapshots live in memory: a run resumed from a checkpoint averages those taken after the resume.
    """

    def __init__(self, n: int, every: int | None = None):
        if n < 1 or (every is not None and every < 1):
            raise ValueError(f"checkpoint averaging needs n >= 1 and every >= 1, got n={n}, every={every}")
        self.every = every  # None: the run's validation interval (eval_every, else once per epoch)
        self.snapshots: deque[dict[str, torch.Tensor]] = deque(maxlen=n)
        self.steps: deque[int] = deque(maxlen=n)

    def __call__(self, trainer, step: int) -> None:
        every = self.every or trainer.config.eval_every or trainer.steps_per_epoch
        if step % every == 0 or step == trainer.total_steps:
            model = trainer.accelerator.unwrap_model(trainer.objective).model
            self.snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            self.steps.append(step)

    def averaged(self, like: nn.Module) -> nn.Module:
        """A copy of ``like`` holding the mean of the snapshots (integer buffers: the last one's)."""
        if not self.snapshots:
            raise ValueError("no snapshot taken yet: the run ended before its first averaging step")
        last = self.snapshots[-1]
        mean = {k: torch.stack([s[k] for s in self.snapshots]).mean(0) if v.is_floating_point() else v
                for k, v in last.items()}
        model = copy.deepcopy(like)
        model.load_state_dict(mean)
        return model


def keep_better_on_validation(best: MultiTaskModel, best_metric: float, average: CheckpointAverage,
                              val_sets: dict) -> tuple[MultiTaskModel, dict]:
    """The run's best checkpoint or the average of its last snapshots, whichever has the higher
    mean validation metric (ties keep the checkpoint), and what was compared."""
    from .training import evaluate

    averaged = average.averaged(best)
    metrics = evaluate(averaged, val_sets)
    mean = float(np.mean([m["benchmark_value"] for m in metrics.values()]))
    kept = mean > best_metric
    summary = {"snapshot_steps": list(average.steps), "average_validation_metric": mean,
               "average_validation": {t: m["benchmark_value"] for t, m in metrics.items()},
               "best_checkpoint_validation_metric": best_metric, "kept": "average" if kept else "best checkpoint"}
    return (averaged if kept else best), summary
