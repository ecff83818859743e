"""Training memory counted from tensors: what autograd saves, gradients, optimiser state."""

from __future__ import annotations

import torch
from torch import nn

from sentence_mtl.memory import MB, SavedActivations, training_memory_mb


def test_saved_activations_count_inputs_kept_for_backward_not_weights():
    layer = nn.Linear(64, 32)
    x = torch.randn(10, 64)
    activations = SavedActivations(layer.parameters())
    with activations.recording():
        layer(x).sum().backward()
    assert activations.peak_bytes == x.numel() * 4  # Linear keeps its input; its weight is excluded


def test_nothing_is_saved_where_nothing_needs_a_gradient():
    frozen, top = nn.Linear(64, 64).requires_grad_(False), nn.Linear(64, 4)
    x = torch.randn(8, 64)
    activations = SavedActivations([*frozen.parameters(), *top.parameters()])
    with activations.recording():
        top(torch.relu(frozen(x))).sum().backward()
    assert activations.peak_bytes == 8 * 64 * 4  # only the top layer's input


def test_peak_is_the_largest_step_and_shared_storage_counts_once():
    layer = nn.Linear(16, 16)
    activations = SavedActivations(layer.parameters())
    for batch in (4, 32, 8):
        x = torch.randn(batch, 16)
        with activations.recording():
            (layer(x) * layer(x)).sum().backward()  # x saved twice, one storage
    assert activations.peak_bytes == 32 * 16 * 4 + 2 * 32 * 16 * 4  # x once + the two outputs for the product


def test_training_memory_adds_gradients_and_adamw_state():
    layer = nn.Linear(256, 256)
    optimizer = torch.optim.AdamW(layer.parameters())
    layer(torch.randn(2, 256)).sum().backward()
    optimizer.step()
    parameter_bytes = (256 * 256 + 256) * 4
    memory = training_memory_mb(MB, layer.parameters(), optimizer)
    assert memory["gradient_mb"] == parameter_bytes / MB
    assert memory["optimizer_state_mb"] == 2 * parameter_bytes / MB
    assert memory["training_memory_mb"] == 1 + 3 * parameter_bytes / MB
    assert training_memory_mb(0, layer.parameters()) == {**memory, "activation_mb": 0.0,
                                                         "training_memory_mb": 3 * parameter_bytes / MB}
