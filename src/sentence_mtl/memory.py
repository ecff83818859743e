"""Training memory counted from tensors, not from the process's resident size.

RSS growth (``results.measure``) depends on what the allocator kept from earlier runs in the
same process, so in a notebook that trains forty models one after another it says little. What
a strategy adds to memory when it trains is exact and comparable instead:

- activations: every tensor autograd saves for the backward pass (counted once per storage,
  parameters excluded), captured with ``torch.autograd.graph.saved_tensors_hooks``;
- gradients of the trainable parameters;
- the optimiser's state (AdamW: two moments per trainable parameter).

The weights themselves are not counted: every strategy holds the same model for inference.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

MB = 2**20


class SavedActivations:
    """Bytes autograd keeps for backward while the context is open; ``peak_bytes`` over ``reset()``s."""

    def __init__(self, parameters=()):
        self.excluded = {p.untyped_storage().data_ptr() for p in parameters}
        self.seen: set[int] = set()
        self.bytes = 0
        self.peak_bytes = 0

    def reset(self) -> None:
        """Start a new step: its saved tensors are freed after backward."""
        self.peak_bytes = max(self.peak_bytes, self.bytes)
        self.seen.clear()
        self.bytes = 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in self.seen and key not in self.excluded:
            self.seen.add(key)
            self.bytes += storage.nbytes()
        # detached, never the tensor itself: a saved output that points back at its own grad_fn
        # is a reference cycle in C++ that Python's gc cannot see, and it kept every trained
        # model alive (about 90 MB a run; notebook 03 ran out of 24 GB)
        return tensor.detach()

    @contextmanager
    def recording(self):
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda tensor: tensor):
            yield self
        self.reset()


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(tensor_bytes(v for v in state.values() if torch.is_tensor(v) and v.dim() > 0)
               for state in optimizer.state.values())


def training_memory_mb(activation_bytes: int, trainable, optimizer: torch.optim.Optimizer | None = None,
                       adam_moments: int = 2) -> dict[str, float]:
    """The three parts and their sum, in MB. With an optimiser, only parameters that received a
    gradient count (a BERT pooler that mean pooling never uses has none); without one (a
    library's trainer), AdamW's state is ``adam_moments`` fp32 copies of the trainable parameters."""
    trainable = [p for p in trainable if optimizer is None or p in optimizer.state]
    gradients = tensor_bytes(trainable)
    state = optimizer_state_bytes(optimizer) if optimizer is not None else adam_moments * gradients
    parts = {"activation_mb": activation_bytes / MB, "gradient_mb": gradients / MB, "optimizer_state_mb": state / MB}
    return {**parts, "training_memory_mb": sum(parts.values())}
