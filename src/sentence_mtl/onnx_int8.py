"""The transformer backbone run by ONNX Runtime with int8 weights: the fast CPU path.

The backbone is exported to ONNX and its matrix multiplications quantised by ONNX Runtime's
dynamic quantisation with one weight scale per output channel (activations are quantised on the
fly, per tensor). ``benchmarks/int8_onnx.py`` measures it against our fp32 encoder and against
PyTorch's own dynamic int8 in one process: it is the fastest variant tried that keeps STS-B
quality. Pooling, projection and the L2 norm stay in PyTorch, so a ``SentenceEncoder`` (and the
heads of a ``MultiTaskModel`` above it) run unchanged on top.

Exporting and quantising take a few seconds, done once when the backbone is built; the ONNX
files live in a temporary folder that is removed with the object.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from .io import InputError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Traced(nn.Module):
    """The backbone with a plain tensor output, which the exporter needs."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state


def export(backbone: nn.Module, tokenizer, path: Path) -> None:
    """The backbone as an ONNX graph with dynamic batch and token axes."""
    example = tokenizer(["an example sentence to trace", "another"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    with warnings.catch_warnings():  # tracer notes on Python control flow the graph does not need
        warnings.simplefilter("ignore")
        torch.onnx.export(_Traced(backbone).eval(), tuple(example[n] for n in INPUTS), str(path),
                          input_names=list(INPUTS), output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)


def quantize(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic int8 quantisation of every MatMul, one weight scale per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice meant for static quantisation at WARNING
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


class OnnxInt8Backbone(nn.Module):
    """Stands in for a Hugging Face backbone at inference: same inputs, ``.last_hidden_state`` out."""

    def __init__(self, backbone: nn.Module, tokenizer, threads: int | None = None):
        super().__init__()
        try:
            import onnx  # noqa: F401  (the exporter needs it)
            import onnxruntime as ort
        except ImportError as e:
            raise InputError(f"The int8 path needs ONNX Runtime ({e.name} is not installed): "
                             "pip install -e '.[onnx]' (`make setup` installs it), or leave out --int8.") from None

        self.config = backbone.config
        self._folder = tempfile.TemporaryDirectory(prefix="sentence-mtl-onnx-")
        fp32, int8 = Path(self._folder.name) / "fp32.onnx", Path(self._folder.name) / "int8.onnx"
        export(backbone, tokenizer, fp32)
        quantize(fp32, int8)
        fp32.unlink()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
        self.model_bytes = int8.stat().st_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> SimpleNamespace:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        feeds = {name: np.ascontiguousarray(t.cpu().numpy(), dtype=np.int64)
                 for name, t in zip(INPUTS, (input_ids, attention_mask, token_type_ids))}
        hidden = self.session.run(None, feeds)[0]
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))

    def __deepcopy__(self, memo):  # an ONNX Runtime session is not copied: copies share it
        return self
