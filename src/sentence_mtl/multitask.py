"""``MultiTaskModel``: one shared ``SentenceEncoder``, one classification head per task.

Heads read the pooled sentence vector, so every task shares the whole encoder and adds only
its head's parameters; a new task is one more ``HeadSpec`` (``heads_for(["topic", ...])``).
Saved models are a folder: the encoder (HF format), ``heads.safetensors`` and
``multitask_config.json`` with the label names and the training config, loadable without
any of the training code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import TASKS
from .encoder import ENCODER_CONFIG, SentenceEncoder
from .model_folder import (BadField, ModelLoadError, NotAModelFolder, UnreadablePart, check, check_finite,
                           check_positive_int, read_json_object, reading, verify_checksums, write_checksums)

CONFIG_NAME = "multitask_config.json"
HEADS_NAME = "heads.safetensors"
HOW_TO_REMAKE = "Re-create it with `make train` (or `sentence-mtl train --config FILE --save-to FOLDER`)."


@dataclass(frozen=True)
class HeadSpec:
    """A task head: its classes, and optionally a hidden layer before the classifier."""

    task: str
    label_names: tuple[str, ...]
    hidden_dim: int | None = None
    dropout: float = 0.1

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


def heads_for(tasks, hidden_dim: int | None = None, dropout: float = 0.1) -> list[HeadSpec]:
    """Head specs for registered tasks (``data.TASKS``): adding a task is adding its name."""
    return [HeadSpec(t, TASKS[t].label_names, hidden_dim, dropout) for t in tasks]


class ClassificationHead(nn.Module):
    def __init__(self, input_dim: int, spec: HeadSpec):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(spec.dropout)]
        if spec.hidden_dim:
            layers += [nn.Linear(input_dim, spec.hidden_dim), nn.GELU(), nn.Dropout(spec.dropout)]
            input_dim = spec.hidden_dim
        layers.append(nn.Linear(input_dim, spec.n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, sentence_embedding: torch.Tensor) -> torch.Tensor:
        return self.net(sentence_embedding)


class MultiTaskModel(nn.Module):
    def __init__(self, encoder: SentenceEncoder, heads: list[HeadSpec], training_config: dict | None = None):
        super().__init__()
        self.encoder = encoder
        self.specs = {spec.task: spec for spec in heads}
        self.heads = nn.ModuleDict({spec.task: ClassificationHead(encoder.dim, spec) for spec in heads})
        self.training_config = training_config or {}

    @classmethod
    def from_encoder_name(cls, name: str, tasks, hidden_dim: int | None = None, dropout: float = 0.1,
                          seed: int = 0, normalize: bool = False, **encoder_kwargs) -> "MultiTaskModel":
        """Heads read the mean-pooled vector *before* L2 normalisation by default: unit vectors
        make logits tiny, so heads on them learn slowly (measured in notebook 02's first run)."""
        encoder = SentenceEncoder.from_pretrained(name, seed=seed, normalize=normalize, **encoder_kwargs)
        torch.manual_seed(seed)
        return cls(encoder, heads_for(tasks, hidden_dim, dropout))

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def forward(self, input_ids, attention_mask, token_type_ids=None, tasks=None) -> dict[str, torch.Tensor]:
        """Logits for each task asked for (all by default), from one shared encoder pass."""
        embedding = self.encoder(input_ids, attention_mask, token_type_ids)
        return {task: self.heads[task](embedding) for task in (tasks or self.tasks)}

    @torch.inference_mode()
    def predict_proba(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Class probabilities per task, one row per text, in input order."""
        was_training = self.training
        self.eval()
        embeddings = torch.from_numpy(self.encoder.encode(texts, batch_size=batch_size))
        out = {task: torch.softmax(head(embeddings), dim=-1).numpy() for task, head in self.heads.items()}
        self.train(was_training)
        return out

    def predict(self, texts: list[str], batch_size: int = 64) -> dict[str, dict[str, list]]:
        """Per task: the predicted label name and its probability for every text."""
        result = {}
        for task, proba in self.predict_proba(texts, batch_size).items():
            best = proba.argmax(1)
            names = self.specs[task].label_names
            result[task] = {"label": [names[i] for i in best],
                            "probability": proba[np.arange(len(best)), best].tolist()}
        return result

    # ---- freezing, by name

    def encoder_layers(self) -> list[nn.Module]:
        """The transformer blocks, bottom to top (BERT-style backbones)."""
        return self.encoder.layers()

    def set_trainable(self, part: str, trainable: bool) -> "MultiTaskModel":
        """``part``: 'encoder', 'embeddings', 'layer.<i>', 'top.<k>', 'heads', 'head.<task>' or
        'lora' (the LoRA adapter weights that ``peft.inject_adapter_in_model`` added)."""
        if part == "lora":
            adapters = [p for name, p in self.encoder.named_parameters() if "lora_" in name]
            if not adapters:
                raise ValueError("part 'lora': this model has no LoRA adapters; inject them first.")
            for p in adapters:
                p.requires_grad_(trainable)
            return self
        if part == "encoder":
            modules = [self.encoder]
        elif part == "embeddings":
            modules = [self.encoder.backbone.embeddings]
        elif part.startswith("layer."):
            modules = [self.encoder_layers()[int(part.split(".")[1])]]
        elif part.startswith("top."):
            k = int(part.split(".")[1])
            modules = self.encoder_layers()[len(self.encoder_layers()) - k:] if k else []
        elif part == "heads":
            modules = list(self.heads.values())
        elif part.startswith("head."):
            modules = [self.heads[part.split(".", 1)[1]]]
        else:
            raise ValueError(f"Unknown part {part!r}: use encoder, embeddings, layer.<i>, top.<k>, heads, "
                             "head.<task> or lora.")
        for module in modules:
            for p in module.parameters():
                p.requires_grad_(trainable)
        return self

    def freeze(self, *parts: str) -> "MultiTaskModel":
        for part in parts:
            self.set_trainable(part, False)
        return self

    def unfreeze(self, *parts: str) -> "MultiTaskModel":
        for part in parts:
            self.set_trainable(part, True)
        return self

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part, and how many are trainable now."""
        count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
        counts = {"encoder.embeddings": count(self.encoder.backbone.embeddings)}
        for i, layer in enumerate(self.encoder_layers()):
            counts[f"encoder.layer.{i}"] = count(layer)
        rest = count(self.encoder) - sum(counts.values())
        counts["encoder.other (pooler, projection)"] = rest
        for task, head in self.heads.items():
            counts[f"head.{task}"] = count(head)
        counts["total"] = count(self)
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts

    # ---- persistence

    def save_pretrained(self, directory: str | Path) -> None:
        """Encoder + heads + config, written to a temporary folder and renamed into place."""
        import shutil
        import tempfile

        from safetensors.torch import save_file

        from .io import make_readable

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
        try:
            self.encoder.save_pretrained(tmp / "encoder")
            save_file({k: v.contiguous() for k, v in self.heads.state_dict().items()}, str(tmp / HEADS_NAME))
            config = {"heads": [asdict(s) for s in self.specs.values()],
                      "training_config": self.training_config}
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str))
            write_checksums(tmp)
            make_readable(tmp)
            if directory.exists():
                shutil.rmtree(directory)
            tmp.rename(directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "MultiTaskModel":
        """A folder written by :meth:`save_pretrained`. Missing, truncated or edited files raise
        :class:`ModelLoadError` naming the file (:class:`NotAModelFolder` if nothing is there)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file():
            raise NotAModelFolder(f"{directory} is not a saved multi-task model (no {CONFIG_NAME}). "
                                  "Train one with `make train` or `sentence-mtl train --config FILE`.")
        try:
            with reading(CONFIG_NAME):
                config = read_json_object(directory / CONFIG_NAME)
                specs = _head_specs(config.get("heads"))
                check(isinstance(config.get("training_config", {}), dict), "training_config", "an object",
                      config.get("training_config"))
            with reading(f"encoder/{ENCODER_CONFIG}"):
                if not (directory / "encoder" / ENCODER_CONFIG).is_file():
                    raise BadField("missing")
            try:
                encoder = SentenceEncoder.from_pretrained(directory / "encoder")
            except ModelLoadError as e:
                raise UnreadablePart(f"encoder/{e.detail}") from e
            with reading(CONFIG_NAME):  # e.g. a task name that cannot name a module
                model = cls(encoder, specs, config.get("training_config"))
            with reading(HEADS_NAME):
                model.heads.load_state_dict(load_file(str(directory / HEADS_NAME)))
                check_finite(model.heads.named_parameters())
            verify_checksums(directory)  # last: a damaged file that still loads, e.g. one flipped bit
        except UnreadablePart as e:
            raise ModelLoadError(f"{directory} is not a usable multi-task model: {e}. {HOW_TO_REMAKE}",
                                 detail=str(e)) from e
        return model.eval()


def _head_specs(heads) -> list[HeadSpec]:
    """The ``heads`` of a saved config, every field checked (:class:`BadField`)."""
    check(isinstance(heads, list) and len(heads) > 0, "heads", "a non-empty list", heads)
    specs = []
    for i, head in enumerate(heads):
        check(isinstance(head, dict), f"heads[{i}]", "an object", head)
        names = head.get("label_names")
        check(isinstance(head.get("task"), str) and head["task"] != "", f"heads[{i}].task", "a task name",
              head.get("task"))
        check(isinstance(names, list) and len(names) > 1 and all(isinstance(n, str) and n for n in names),
              f"heads[{i}].label_names", "a list of at least two label names", names)
        check(len(set(names)) == len(names), f"heads[{i}].label_names", "distinct label names (a repeated "
              "name would make two classes one answer)", names)
        check_positive_int(head.get("hidden_dim"), f"heads[{i}].hidden_dim", allow_none=True)
        dropout = head.get("dropout", 0.1)
        check(isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1,
              f"heads[{i}].dropout", "a number in [0, 1)", dropout)
        check(head["task"] not in {spec.task for spec in specs}, f"heads[{i}].task",
              "a task name no other head has", head["task"])
        specs.append(HeadSpec(head["task"], tuple(names), head.get("hidden_dim"), dropout))
    return specs
