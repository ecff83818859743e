"""The multi-task training loop, hand-written because it is the point of Task 4.

What it does, in order of a step: pick a source dataset by the task-sampling scheme, take its
next length-bucketed batch, compute each task's loss only where that task has a label,
combine the task losses by the weighting scheme, step AdamW under a warm-up/linear-decay
schedule with gradient clipping. Every ``eval_every`` steps (default: each epoch) it scores
each task on its validation set, keeps the best checkpoint by the mean benchmark metric, stops
early when that stops improving, and writes a resumable checkpoint atomically.

``accelerate`` handles device placement, mixed precision and multi-process runs
(``accelerate launch --num_processes 2``): every process builds the same batch plan from the
seed and takes its own slice of it.

Determinism: the batch plan of epoch ``e`` is a pure function of (seed, e); the torch RNG
(dropout) is saved in each checkpoint. A run resumed from a checkpoint therefore takes exactly
the steps the uninterrupted run took.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import DEFAULT_MODEL
from .data import TASKS, JointLabelData, TaskData
from .evaluation import classification_metrics
from .io import write_json
from .multitask import MultiTaskModel

MISSING = -1  # label value meaning "this example has no label for this task"


# --------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Everything a run depends on; saved beside its results and checkpoints."""

    model: str = DEFAULT_MODEL
    tasks: tuple[str, ...] = ("topic", "sentiment")
    head_hidden_dim: int | None = None
    dropout: float = 0.1
    normalize: bool = False  # heads read the un-normalised mean-pooled vector
    max_seq_length: int = 128
    batch_size: int = 32
    epochs: int = 3
    steps_per_epoch: int | None = None  # None: every source's batches once, on average
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    layer_decay: float | None = None  # lr(layer l) = encoder_lr * layer_decay ** (L - 1 - l)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    sampling: str = "proportional"  # round_robin | proportional | temperature | annealed
    temperature_alpha: float = 0.5  # p(source) ~ N ** alpha for "temperature"
    loss_weighting: str = "equal"  # equal | static | uncertainty
    static_weights: dict[str, float] = field(default_factory=dict)
    eval_every: int | None = None  # steps between validations; None: once per epoch
    early_stopping_patience: int | None = 2
    freeze: tuple[str, ...] = ()  # MultiTaskModel parts to freeze, e.g. ("embeddings",)
    bucket_size: int = 50  # batches per length-sorting pool
    seed: int = 0
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (accelerate)
    log_every: int = 10
    output_dir: str = "runs/train"
    # data: which training examples (per class, None = all) and how many validation items per task
    train_per_class: int | None = None
    val_max_per_task: int | None = 1000
    data_seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown training config key(s) {sorted(unknown)}; known: {sorted(known)}")
        values = dict(values)
        for key in ("tasks", "freeze"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- data for training


@dataclass
class Source:
    """One training dataset. ``labels[task][i]`` is ``MISSING`` where text i has no label."""

    name: str
    texts: list[str]
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_task_data(cls, data: TaskData) -> "Source":
        return cls(data.task, data.texts, {data.task: np.asarray(data.labels)})

    @classmethod
    def from_joint(cls, data: JointLabelData, tasks=None) -> "Source":
        return cls(data.dataset, data.texts, {t: np.asarray(data.labels[t]) for t in (tasks or data.labels)})


def load_training_data(config: TrainConfig, source) -> tuple[list[Source], dict[str, TaskData]]:
    """Training sources and validation sets for ``config.tasks`` from a ``DataSource``.

    Validation sets are carved from the training data (``data.load_task``); the test sets are
    never touched here.
    """
    from .data import load_task, sample_per_class, stratified_subset

    sources, val_sets = [], {}
    for task in config.tasks:
        train = load_task(task, "train", source)
        if config.train_per_class is not None:
            train = sample_per_class(train, min(config.train_per_class, min(train.class_counts().values())),
                                     config.data_seed)
        sources.append(Source.from_task_data(train))
        val_sets[task] = stratified_subset(load_task(task, "val", source), config.val_max_per_task)
    return sources, val_sets


def sampling_probabilities(sizes: dict[str, int], scheme: str, alpha: float, epoch: int,
                           epochs: int) -> dict[str, float]:
    """p(source) for the proportional, temperature and annealed schemes.

    ``annealed`` is "BERT and PALs" (Stickland & Murray 2019): alpha = 1 - 0.8 (e - 1)/(E - 1)
    for epoch e = 1..E, from proportional towards uniform.
    """
    if scheme == "proportional":
        alpha = 1.0
    elif scheme == "annealed":
        alpha = 1.0 - 0.8 * (epoch / max(1, epochs - 1))
    elif scheme != "temperature":
        raise ValueError(f"no probabilities for sampling scheme {scheme!r}")
    weights = {name: n ** alpha for name, n in sizes.items()}
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


def _length_bucketed_batches(lengths: np.ndarray, batch_size: int, bucket_size: int,
                             rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, sort by length inside pools of ``bucket_size`` batches, shuffle the batches:
    little padding, yet every batch is still a random draw."""
    order = rng.permutation(len(lengths))
    batches = []
    pool = batch_size * bucket_size
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def epoch_plan(sources: list[Source], lengths: dict[str, np.ndarray], config: TrainConfig,
               epoch: int) -> list[tuple[str, np.ndarray]]:
    """The (source, example indices) of every step of an epoch: a pure function of (seed, epoch)."""
    rng = np.random.default_rng([config.seed, epoch])
    queues = {s.name: [] for s in sources}

    def next_batch(name: str) -> np.ndarray:
        if not queues[name]:  # exhausted: a fresh shuffle of that source
            queues[name] = _length_bucketed_batches(lengths[name], config.batch_size, config.bucket_size, rng)
        return queues[name].pop()

    names = [s.name for s in sources]
    total_batches = sum(math.ceil(len(s) / config.batch_size) for s in sources)
    steps = config.steps_per_epoch or total_batches
    if config.sampling == "round_robin":
        order = [names[i % len(names)] for i in range(steps)]
    else:
        p = sampling_probabilities({s.name: len(s) for s in sources}, config.sampling,
                                   config.temperature_alpha, epoch, config.epochs)
        order = rng.choice(names, size=steps, p=[p[n] for n in names]).tolist()
    return [(name, next_batch(name)) for name in order]


# --------------------------------------------------------------------------- loss weighting


class LossWeighting(nn.Module):
    """equal: sum of task losses; static: fixed weights; uncertainty: Kendall et al. 2018,
    L = sum_t exp(-s_t) L_t + s_t / 2 with learned s_t = log sigma_t^2."""

    def __init__(self, tasks, scheme: str = "equal", static_weights: dict[str, float] | None = None):
        super().__init__()
        if scheme not in ("equal", "static", "uncertainty"):
            raise ValueError(f"Unknown loss weighting {scheme!r}: equal, static or uncertainty.")
        self.scheme = scheme
        self.static = {t: float((static_weights or {}).get(t, 1.0)) for t in tasks}
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in tasks}) \
            if scheme == "uncertainty" else None

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.scheme == "equal":
            return sum(losses.values())
        if self.scheme == "static":
            return sum(self.static[t] * loss for t, loss in losses.items())
        return sum(torch.exp(-self.log_vars[t]) * loss + 0.5 * self.log_vars[t] for t, loss in losses.items())

    def weights(self) -> dict[str, float]:
        if self.log_vars is None:
            return dict(self.static) if self.scheme == "static" else {t: 1.0 for t in self.static}
        return {t: float(torch.exp(-v)) for t, v in self.log_vars.items()}


class MultiTaskObjective(nn.Module):
    """Model + loss weighting in one module, so multi-process runs synchronise both."""

    def __init__(self, model: MultiTaskModel, weighting: LossWeighting):
        super().__init__()
        self.model = model
        self.weighting = weighting

    def forward(self, batch: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]):
        present = {t: y for t, y in labels.items() if (y != MISSING).any()}
        logits = self.model(**batch, tasks=list(present))
        losses = {t: nn.functional.cross_entropy(logits[t][y != MISSING], y[y != MISSING])
                  for t, y in present.items()}
        return self.weighting(losses), losses


# --------------------------------------------------------------------------- optimiser


def parameter_groups(model: MultiTaskModel, weighting: LossWeighting, config: TrainConfig) -> list[dict]:
    """AdamW groups: heads and loss weights at ``head_lr``; encoder at ``encoder_lr``, decayed per
    layer from the top when ``layer_decay`` is set; no weight decay on biases and LayerNorms."""
    layers = model.encoder_layers()
    n_layers = len(layers)
    layer_of = {id(p): i for i, layer in enumerate(layers) for p in layer.parameters()}
    embedding_ids = {id(p) for p in model.encoder.backbone.embeddings.parameters()}
    groups: dict[tuple[float, float], list] = {}

    def add(param, lr, name):
        if not param.requires_grad:
            return
        no_decay = param.ndim < 2 or "LayerNorm" in name or "log_vars" in name
        groups.setdefault((lr, 0.0 if no_decay else config.weight_decay), []).append(param)

    for name, param in model.encoder.named_parameters():
        lr = config.encoder_lr
        if config.layer_decay is not None:
            if id(param) in layer_of:
                lr *= config.layer_decay ** (n_layers - 1 - layer_of[id(param)])
            elif id(param) in embedding_ids:
                lr *= config.layer_decay ** n_layers
        add(param, lr, name)
    for name, param in list(model.heads.named_parameters()) + list(weighting.named_parameters()):
        add(param, config.head_lr, name)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


# --------------------------------------------------------------------------- evaluation


@torch.inference_mode()
def evaluate(model: MultiTaskModel, val_sets: dict[str, TaskData], batch_size: int = 64) -> dict[str, dict]:
    """Per task: accuracy, macro P/R/F1, confusion matrix and the benchmark's own metric."""
    results = {}
    for task, data in val_sets.items():
        proba = model.predict_proba(data.texts, batch_size=batch_size)[task]
        metrics = classification_metrics(data.labels, proba.argmax(1), len(data.label_names))
        metrics["benchmark_metric"] = TASKS[task].metric if task in TASKS else "accuracy"
        metrics["benchmark_value"] = metrics[metrics["benchmark_metric"]]
        metrics["n"] = len(data)
        results[task] = metrics
    return results


# --------------------------------------------------------------------------- the loop


class StopTraining(Exception):
    """Raised by a callback to stop a run (tests use it to simulate a killed process)."""


def _atomic_dir(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


class Trainer:
    """Runs one multi-task training job; ``run()`` returns the best model and the history."""

    def __init__(self, config: TrainConfig, train_sources: list[Source], val_sets: dict[str, TaskData],
                 model: MultiTaskModel | None = None, show_progress: bool = True, step_callback=None):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.config = config
        self.sources = train_sources
        self.val_sets = val_sets
        self.show_progress = show_progress
        self.step_callback = step_callback
        self.output_dir = Path(config.output_dir)
        # cpu=True on GPU-less machines: with it, `accelerate launch --multi_gpu --num_processes 2`
        # (torchrun under the hood) gives a gloo MULTI_CPU run; plain `--cpu` launches one process
        self.accelerator = Accelerator(
            cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.model = model or MultiTaskModel.from_encoder_name(
            config.model, config.tasks, config.head_hidden_dim, config.dropout, seed=config.seed,
            normalize=config.normalize, max_seq_length=config.max_seq_length)
        self.model.training_config = config.to_dict()
        self.model.freeze(*config.freeze)
        self.weighting = LossWeighting(self.model.tasks, config.loss_weighting, config.static_weights)
        tokenizer = self.model.encoder.tokenizer
        self.features = {s.name: tokenizer(s.texts, truncation=True, max_length=config.max_seq_length)
                         for s in train_sources}
        self.lengths = {name: np.array([len(x) for x in f["input_ids"]]) for name, f in self.features.items()}
        self.steps_per_epoch = len(epoch_plan(self.sources, self.lengths, config, 0)) // self.accelerator.num_processes
        self.total_steps = self.steps_per_epoch * config.epochs
        objective = MultiTaskObjective(self.model, self.weighting)
        optimizer = torch.optim.AdamW(parameter_groups(self.model, self.weighting, config))
        from transformers import get_linear_schedule_with_warmup

        self.scheduler = get_linear_schedule_with_warmup(
            optimizer, int(config.warmup_ratio * self.total_steps), self.total_steps)
        self.objective, self.optimizer = self.accelerator.prepare(objective, optimizer)
        self.state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_metric": -math.inf,
                      "best_step": None, "evals_without_improvement": 0, "stopped_early": False}

    # ---- persistence

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoint"

    @property
    def best_dir(self) -> Path:
        return self.output_dir / "best"

    @property
    def log_path(self) -> Path:
        return self.output_dir / "log.jsonl"

    def _log(self, entry: dict) -> None:
        if self.accelerator.is_main_process:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def save_checkpoint(self) -> None:
        if not self.accelerator.is_main_process:
            return
        objective = self.accelerator.unwrap_model(self.objective)

        def write(tmp: Path):
            torch.save({"objective": objective.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(), "state": self.state,
                        "torch_rng": torch.get_rng_state(), "config": self.config.to_dict()},
                       tmp / "state.pt")
            shutil.copy(self.log_path, tmp / "log.jsonl")
        _atomic_dir(self.checkpoint_dir, write)

    def try_resume(self) -> bool:
        """Continue from ``output_dir/checkpoint`` when one exists (same config required)."""
        path = self.checkpoint_dir / "state.pt"
        if not path.is_file():
            return False
        saved = torch.load(path, weights_only=False)
        if saved["config"] != self.config.to_dict():
            raise ValueError(f"{path} was written by a different config; use another output_dir.")
        self.accelerator.unwrap_model(self.objective).load_state_dict(saved["objective"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state = saved["state"]
        torch.set_rng_state(saved["torch_rng"])
        if self.accelerator.is_main_process:  # the log, as it was at the checkpoint
            shutil.copy(self.checkpoint_dir / "log.jsonl", self.log_path)
        return True

    # ---- steps

    def _collate(self, source: Source, idx: np.ndarray):
        features = self.features[source.name]
        batch = self.model.encoder.tokenizer.pad(
            {k: [features[k][i] for i in idx] for k in features}, return_tensors="pt")
        labels = {t: torch.as_tensor(source.labels[t][idx], dtype=torch.long) for t in source.labels}
        device = self.accelerator.device
        return {k: v.to(device) for k, v in batch.items()}, {t: y.to(device) for t, y in labels.items()}

    def _validate(self) -> dict:
        self.accelerator.wait_for_everyone()
        model = self.accelerator.unwrap_model(self.objective).model
        metrics = evaluate(model, self.val_sets) if self.accelerator.is_main_process else {}
        model.train()
        if self.accelerator.is_main_process:
            mean = float(np.mean([m["benchmark_value"] for m in metrics.values()]))
            improved = mean > self.state["best_metric"]
            if improved:
                self.state.update(best_metric=mean, best_step=self.state["global_step"],
                                  evals_without_improvement=0)
                _atomic_dir(self.best_dir, lambda tmp: model.save_pretrained(tmp / "model"))
            else:
                self.state["evals_without_improvement"] += 1
            self._log({"type": "eval", "step": self.state["global_step"], "epoch": self.state["epoch"],
                       "mean_metric": mean, "improved": improved,
                       "loss_weights": self.accelerator.unwrap_model(self.objective).weighting.weights(),
                       "tasks": metrics})
        patience = self.config.early_stopping_patience
        stop = patience is not None and self.state["evals_without_improvement"] >= patience
        stop = self.accelerator.gather(torch.tensor([float(stop)], device=self.accelerator.device)).max() > 0
        self.state["stopped_early"] = bool(stop)
        self.save_checkpoint()
        self.accelerator.wait_for_everyone()
        return metrics

    def run(self, resume: bool = True) -> tuple[MultiTaskModel, list[dict]]:
        """Train to the end (or early stop); returns the best model and the log entries."""
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.output_dir / "config.json", self.config.to_dict())
        self.accelerator.wait_for_everyone()
        if not (resume and self.try_resume()) and self.accelerator.is_main_process:
            self.log_path.unlink(missing_ok=True)
            self.log_path.touch()
        self.accelerator.wait_for_everyone()
        sources = {s.name: s for s in self.sources}
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        self.objective.train()
        bar = tqdm(total=self.total_steps, initial=self.state["global_step"], desc="train",
                   disable=not (self.show_progress and self.accelerator.is_main_process))
        start = time.perf_counter()
        while self.state["epoch"] < self.config.epochs and not self.state["stopped_early"]:
            plan = epoch_plan(self.sources, self.lengths, self.config, self.state["epoch"])
            plan = plan[rank::world][: self.steps_per_epoch]
            for name, idx in plan[self.state["step_in_epoch"]:]:
                batch, labels = self._collate(sources[name], idx)
                loss, task_losses = self.objective(batch, labels)
                self.accelerator.backward(loss)
                grad_norm = self.accelerator.clip_grad_norm_(self.objective.parameters(), self.config.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.state["global_step"] += 1
                self.state["step_in_epoch"] += 1
                bar.update(1)
                step = self.state["global_step"]
                if step % self.config.log_every == 0 or step == 1:
                    self._log({"type": "step", "step": step, "epoch": self.state["epoch"], "source": name,
                               "loss": loss.item(), "task_losses": {t: v.item() for t, v in task_losses.items()},
                               "grad_norm": float(grad_norm.item() if hasattr(grad_norm, "item") else grad_norm), "lr": self.scheduler.get_last_lr()[0],
                               "examples": int(len(idx)), "seconds": time.perf_counter() - start})
                if self.step_callback:
                    self.step_callback(self, step)
                at_epoch_end = self.state["step_in_epoch"] == len(plan)
                if at_epoch_end:
                    self.state["epoch"] += 1
                    self.state["step_in_epoch"] = 0
                if (self.config.eval_every and step % self.config.eval_every == 0) or \
                        (at_epoch_end and not self.config.eval_every) or step == self.total_steps:
                    self._validate()
                    if self.state["stopped_early"]:
                        break
        bar.close()
        # each process reports what it trained on (the multi-process test reads these)
        write_json(self.output_dir / f"process_{rank}.json",
                   {"rank": rank, "world_size": world, "steps": self.state["global_step"],
                    "first_batch": plan[0][1].tolist() if self.state["global_step"] else None})
        self.accelerator.wait_for_everyone()
        best = MultiTaskModel.from_pretrained(self.best_dir / "model") if self.best_dir.exists() else \
            self.accelerator.unwrap_model(self.objective).model
        return best, read_log(self.log_path)


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def train(config: TrainConfig, train_sources: list[Source], val_sets: dict[str, TaskData],
          **kwargs) -> tuple[MultiTaskModel, list[dict]]:
    return Trainer(config, train_sources, val_sets, **kwargs).run()
