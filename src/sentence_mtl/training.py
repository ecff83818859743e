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

Determinism: the batch plan of epoch ``e`` is a pure function of (seed, e) (``batch_plan``);
the random generators (dropout) are saved in each checkpoint (``checkpoint``: no pickle,
checksummed). A run resumed from a checkpoint therefore takes exactly the steps the
uninterrupted run took. A non-finite loss stops the run with ``TrainingDiverged``.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .batch_plan import (MISSING, Source, length_grouped_batches, epoch_plan,  # noqa: F401 (re-exported)
                         load_training_data, sampling_probabilities)
from .checkpoint import (CheckpointError, atomic_dir, check_trainer_state, load_state, recover_dir,
                         restore_rng_states, rng_states, save_state, verify_dir)
from .data import TaskData
from .evaluation import task_metrics
from .io import InputError, folder_lock, write_json
from .multitask import MultiTaskModel
from .train_config import ConfigError, TrainConfig  # noqa: F401 (re-exported)

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
        return {t: float(torch.exp(-v.detach())) for t, v in self.log_vars.items()}


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
    return {task: task_metrics(task, data, model.predict_proba(data.texts, batch_size=batch_size)[task])
            for task, data in val_sets.items()}


# --------------------------------------------------------------------------- the loop


class StopTraining(Exception):
    """Raised by a callback to stop a run (tests use it to simulate a killed process)."""


class TrainingDiverged(InputError):
    """The loss became NaN or infinite: corrupt weights, or learning rates too high for the data.
    Training stops at once rather than train on garbage and report success."""


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
        for part in config.freeze:
            try:
                self.model.freeze(part)
            except (ValueError, IndexError, KeyError) as e:
                raise ConfigError(f"training config key 'freeze': cannot freeze {part!r} ({e}); use encoder, "
                                  "embeddings, layer.<i>, top.<k>, heads, head.<task> or lora.") from None
        config.check_fits(self.model)
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
                f.write(json_line(entry) + "\n")

    def save_checkpoint(self) -> None:
        if not self.accelerator.is_main_process:
            return
        objective = self.accelerator.unwrap_model(self.objective)
        state = {"objective": objective.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "trainer": self.state, "rng": rng_states(),
                 "config": self.config.to_dict()}

        def write(tmp: Path):
            save_state(tmp, state)
            shutil.copy(self.log_path, tmp / "log.jsonl")
        atomic_dir(self.checkpoint_dir, write)

    def try_resume(self) -> bool:
        """Continue from ``output_dir/checkpoint`` when one exists: verified against its checksums,
        written by the same config, fitting this model; otherwise a CheckpointError."""
        if self.accelerator.is_main_process:  # a run killed while saving: put its last copy back
            recover_dir(self.checkpoint_dir)
            recover_dir(self.best_dir)
        self.accelerator.wait_for_everyone()
        directory = self.checkpoint_dir
        if not directory.exists():
            return False
        saved = load_state(directory)
        changed = self.config.changes_from(saved.get("config"))
        if changed:
            raise CheckpointError(f"Checkpoint {directory} was written by a different config "
                                  f"({'; '.join(changed)}). Use that config or another output_dir; "
                                  "or pass --restart to start over.")
        try:
            self.accelerator.unwrap_model(self.objective).load_state_dict(saved["objective"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scheduler.load_state_dict(saved["scheduler"])
            restore_rng_states(saved["rng"])
            if not isinstance(saved["trainer"], dict) or set(saved["trainer"]) != set(self.state):
                raise KeyError(f"trainer state keys {sorted(saved['trainer'])}")
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            detail = " ".join(str(e).split())
            raise CheckpointError(f"Checkpoint {directory} does not fit this model ({detail[:300]}). Delete it or "
                                  "pass --restart to start over.") from e
        check_trainer_state(saved["trainer"], directory)
        self.state = saved["trainer"]
        if self.accelerator.is_main_process:  # the log, as it was at the checkpoint
            shutil.copy(directory / "log.jsonl", self.log_path)
        return True

    def _check_finite(self, loss: torch.Tensor, task_losses: dict, source: str) -> None:
        """Stop on a NaN or infinite loss, on every process at once (one may see it alone)."""
        finite = torch.isfinite(loss.detach()).reshape(1).float()
        if self.accelerator.num_processes > 1:
            finite = self.accelerator.gather(finite)
        if bool(finite.all()):
            return
        values = ", ".join(f"{t}={float(v.detach()):.4g}" for t, v in task_losses.items())
        raise TrainingDiverged(
            f"Training stopped at step {self.state['global_step'] + 1} (epoch {self.state['epoch']}, source "
            f"{source!r}): the loss is not finite (task losses here: {values}). Lower encoder_lr / head_lr, "
            f"or check the model's weights; a resumed run may come from a bad checkpoint: delete "
            f"{self.checkpoint_dir} or pass --restart.")

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
                atomic_dir(self.best_dir, lambda tmp: model.save_pretrained(tmp / "model"))
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

    def _train(self, bar, rank: int, world: int) -> list[tuple[str, np.ndarray]]:
        """The remaining steps of the run; returns the plan of the last epoch trained (or [])."""
        sources = {s.name: s for s in self.sources}
        plan = []
        start = time.perf_counter()
        while self.state["epoch"] < self.config.epochs and not self.state["stopped_early"]:
            plan = epoch_plan(self.sources, self.lengths, self.config, self.state["epoch"])
            plan = plan[rank::world][: self.steps_per_epoch]
            for name, idx in plan[self.state["step_in_epoch"]:]:
                batch, labels = self._collate(sources[name], idx)
                loss, task_losses = self.objective(batch, labels)
                self._check_finite(loss, task_losses, name)
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
        return plan

    def run(self, resume: bool = True) -> tuple[MultiTaskModel, list[dict]]:
        """Train to the end (or early stop); returns the best model and the log entries. The main
        process holds ``output_dir``'s lock meanwhile: a second trainer on it is refused."""
        with folder_lock(self.output_dir, "trainer", held=self.accelerator.is_main_process):
            return self._run(resume)

    def _run(self, resume: bool) -> tuple[MultiTaskModel, list[dict]]:
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.output_dir / "config.json", self.config.to_dict())
        self.accelerator.wait_for_everyone()
        if not (resume and self.try_resume()) and self.accelerator.is_main_process:
            self.log_path.unlink(missing_ok=True)
            self.log_path.touch()
        self.accelerator.wait_for_everyone()
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        self.objective.train()
        bar = tqdm(total=self.total_steps, initial=self.state["global_step"], desc="train",
                   disable=not (self.show_progress and self.accelerator.is_main_process))
        try:  # the bar is closed before an error is reported, so that the error is the last line
            plan = self._train(bar, rank, world)
        finally:
            bar.close()
        # each process reports what it trained on (the multi-process test reads these)
        write_json(self.output_dir / f"process_{rank}.json",
                   {"rank": rank, "world_size": world, "steps": self.state["global_step"],
                    "first_batch": plan[0][1].tolist() if plan and self.state["global_step"] else None})
        self.accelerator.wait_for_everyone()
        if self.best_dir.exists():  # checked: the model handed back is the one that was validated
            verify_dir(self.best_dir)
        best = MultiTaskModel.from_pretrained(self.best_dir / "model") if self.best_dir.exists() else \
            self.accelerator.unwrap_model(self.objective).model
        return best, read_log(self.log_path)


def json_line(entry: dict) -> str:
    """One strict-JSON log line: a non-finite number is written as null, never as NaN/Infinity."""
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value
    return json.dumps(finite(entry), allow_nan=False)


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def train(config: TrainConfig, train_sources: list[Source], val_sets: dict[str, TaskData],
          **kwargs) -> tuple[MultiTaskModel, list[dict]]:
    return Trainer(config, train_sources, val_sets, **kwargs).run()
