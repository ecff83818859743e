"""Training one strategy of ``strategies.py``: its inputs, its phase schedule, its predictions.

This loop is deliberately smaller than ``training.Trainer``: a strategy needs phase schedules
(gradual unfreezing) and inputs that are cached tensors rather than tokens (heads on cached
embeddings, top-k blocks on cached lower-block outputs), and it does not need checkpoints,
validation or several processes. Both tasks share one encoder and train in alternating
(round-robin) batches; the optimiser groups and layer-wise decay are
``training.parameter_groups``; batches are length-grouped (``batch_plan.length_grouped_batches``:
shuffled pools sorted by length, the batches shuffled again every epoch), so each pads little
and still is a random draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .batch_plan import length_grouped_batches
from .config import DEFAULT_MODEL
from .data import TaskData
from .evaluation import benchmark_metric
from .memory import SavedActivations, training_memory_mb
from .multitask import MultiTaskModel
from .strategies import Phase, Strategy

TASK_NAMES = ("topic", "sentiment")
BUCKET_BATCHES = 8  # batches per length-sorted pool, as Hugging Face's group_by_length (megabatches of 50)


# --------------------------------------------------------------------------- inputs


class TokenInputs:
    """Texts, tokenised once; a batch runs the whole encoder."""

    def __init__(self, tokenizer, texts: list[str], max_length: int):
        self.tokenizer = tokenizer
        self.features = tokenizer(list(texts), truncation=True, max_length=max_length)
        self.lengths = np.array([len(ids) for ids in self.features["input_ids"]])

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx) -> dict[str, torch.Tensor]:
        """Rows ``idx``, padded to their longest."""
        return self.tokenizer.pad({k: [self.features[k][i] for i in idx] for k in self.features},
                                  return_tensors="pt")

    def logits(self, model: MultiTaskModel, idx, task: str) -> torch.Tensor:
        return model(**self.batch(idx), tasks=[task])[task]


class LayerInputs:
    """Cached outputs of the frozen lower blocks; a batch runs only the blocks above ``layer``."""

    def __init__(self, states, layer: int):
        self.states = states
        self.layer = layer
        self.lengths = states.lengths

    def __len__(self) -> int:
        return len(self.states)

    def logits(self, model: MultiTaskModel, idx, task: str) -> torch.Tensor:
        hidden, mask = self.states.batch(idx)
        return model.heads[task](model.encoder.forward_from_layer(self.layer, hidden, mask))


class EmbeddingInputs:
    """Cached sentence embeddings; a batch runs only the head."""

    def __init__(self, embeddings: np.ndarray):
        self.embeddings = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        self.lengths = np.ones(len(embeddings), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.embeddings)

    def logits(self, model: MultiTaskModel, idx, task: str) -> torch.Tensor:
        return model.heads[task](self.embeddings[torch.as_tensor(np.asarray(idx))])


# --------------------------------------------------------------------------- the loop


def set_phase(model: MultiTaskModel, phase: Phase) -> None:
    model.freeze("encoder", "heads")
    model.unfreeze(*phase.trainable)


def trainable_parameters(model: MultiTaskModel, phases) -> int:
    """Parameters trained in at least one phase (for gradual unfreezing: all of the last phase)."""
    ids = set()
    for phase in phases:
        set_phase(model, phase)
        ids |= {id(p) for p in model.parameters() if p.requires_grad}
    return sum(p.numel() for p in model.parameters() if id(p) in ids)


@dataclass
class TrainLog:
    losses: list[float]  # one per step
    memory: dict[str, float]  # ``memory.training_memory_mb``: activations, gradients, optimiser state


def train_steps(model: MultiTaskModel, inputs: dict, labels: dict[str, np.ndarray], strategy: Strategy,
                steps: int, batch_size: int, seed: int, phases=None, show_progress: bool = False) -> TrainLog:
    """Round-robin over tasks, one batch per step; AdamW with warm-up and linear decay over all
    phases; the trainable parts switch at phase boundaries. Logs every step's loss and the
    training memory (the largest step's saved activations, counted by ``memory.SavedActivations``)."""
    from transformers import get_linear_schedule_with_warmup

    from .training import LossWeighting, TrainConfig, parameter_groups  # training imports this module's peers

    phases = phases or strategy.phases
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tasks = list(inputs)
    model.freeze("encoder", "heads")
    for phase in phases:  # the optimiser knows every parameter that will ever train
        model.unfreeze(*phase.trainable)
    config = TrainConfig(encoder_lr=strategy.encoder_lr, head_lr=strategy.head_lr,
                         layer_decay=strategy.layer_decay)
    optimizer = torch.optim.AdamW(parameter_groups(model, LossWeighting(tasks), config))
    ever_trainable = [p for p in model.parameters() if p.requires_grad]
    activations = SavedActivations(model.parameters())
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, int(0.1 * steps)), steps)
    queues = {t: [] for t in tasks}
    boundaries = np.round(np.cumsum([p.share for p in phases]) / sum(p.share for p in phases) * steps).astype(int)
    losses = []
    model.train()
    step = 0
    bar = tqdm(total=steps, desc=strategy.name, disable=not show_progress, leave=False)
    for phase, end in zip(phases, boundaries):
        set_phase(model, phase)
        trainable = [p for p in model.parameters() if p.requires_grad]
        while step < end:
            task = tasks[step % len(tasks)]
            if not queues[task]:  # epoch over: a fresh length-grouped shuffle
                queues[task] = length_grouped_batches(inputs[task].lengths, batch_size, BUCKET_BATCHES, rng)
            idx = queues[task].pop()
            with activations.recording():
                logits = inputs[task].logits(model, idx, task)
                loss = nn.functional.cross_entropy(logits, torch.as_tensor(labels[task][idx]))
            loss.backward()
            nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            bar.update(1)
    bar.close()
    model.eval()
    return TrainLog(losses, training_memory_mb(activations.peak_bytes, ever_trainable, optimizer))


@torch.inference_mode()
def predict(model: MultiTaskModel, inputs, task: str, batch_size: int = 64) -> np.ndarray:
    """Predicted classes, batched by length so each batch pads to its own longest item."""
    model.eval()
    order = np.argsort(-inputs.lengths, kind="stable")
    out = np.empty(len(inputs), dtype=np.int64)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        out[idx] = inputs.logits(model, idx, task).argmax(-1).numpy()
    return out


def score(model: MultiTaskModel, inputs, test: TaskData) -> tuple[str, float]:
    return benchmark_metric(test.task, test.labels, predict(model, inputs, test.task))


# --------------------------------------------------------------------------- model set-up


def new_model(seed: int, max_seq_length: int, model_name: str = DEFAULT_MODEL) -> MultiTaskModel:
    """Both heads on the un-normalised mean-pooled vector (see ``MultiTaskModel``)."""
    return MultiTaskModel.from_encoder_name(model_name, TASK_NAMES, seed=seed, normalize=False,
                                            max_seq_length=max_seq_length).eval()


def add_lora(model: MultiTaskModel, settings) -> MultiTaskModel:
    """Inject LoRA adapters into the backbone in place (peft), B initialised to zero as usual,
    so the model starts exactly where it was."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.target_modules))
    inject_adapter_in_model(config, model.encoder.backbone)
    return model


PROBE_STEPS, PROBE_BATCH = 300, 64


def train_heads(model: MultiTaskModel, embeddings: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                strategy: Strategy, seed: int) -> tuple[TrainLog, int]:
    """The heads alone on fixed sentence embeddings: ``PROBE_STEPS`` steps or 3 epochs, whichever is more."""
    steps = max(PROBE_STEPS, 3 * math.ceil(sum(len(e) for e in embeddings.values()) / PROBE_BATCH))
    inputs = {t: EmbeddingInputs(e) for t, e in embeddings.items()}
    return train_steps(model, inputs, labels, strategy, steps, PROBE_BATCH, seed, phases=(Phase(("heads",)),)), steps

