"""What the caches buy, timed: the bare training step of a strategy on cached inputs against
the same step on tokens (notebook 03's cache benchmark, ``benchmarks/cache_speedup.py`` and
``benchmarks/study_speedups.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..cache import cached_encode, cached_layer_states
from ..config import DEFAULT_MODEL
from ..multitask import MultiTaskModel
from ..strategies import Phase
from ..strategy_training import EmbeddingInputs, LayerInputs, TokenInputs, new_model, set_phase


def cache_speedups(texts: list[str], labels: np.ndarray, task: str = "topic", batch_size: int = 16,
                   steps: int = 10, epochs: int = 3, seed: int = 0, max_seq_length: int = 128,
                   model_name: str = DEFAULT_MODEL) -> dict:
    """Two ratios, each against its peer measured here on the same texts and the same loop body:

    1. a heads-only epoch (batch 64, as ``run_frozen_backbone``) on cached embeddings vs the same
       epoch re-encoding the texts first (mean of ``epochs`` epochs);
    2. a training step of the top 2 blocks on cached block-4 outputs vs a full forward/backward
       with blocks 0-3 and the embeddings frozen (median of ``steps`` steps, same batches).

    Also the most any cache of the lower blocks could give for 2: the full step divided by the
    full step minus the lower blocks' own forward (timed alone, in training mode, on the same
    batches), i.e. the ratio if reading the cache cost nothing (``top2_step_ratio_bound``).
    """
    import time

    from ..strategies import get

    model = new_model(seed, max_seq_length, model_name)
    n = len(texts)
    y = torch.as_tensor(np.asarray(labels))

    def run_steps(inputs, batches, phase: Phase) -> list[float]:
        set_phase(model, phase)
        return timed_steps(model, inputs, batches, y, task)

    heads = get("frozen_backbone").phases[0]
    epoch = [np.arange(n)[i:i + 64] for i in range(0, n, 64)]
    cached = EmbeddingInputs(cached_encode(model.encoder, texts, show_progress=False))
    run_steps(cached, epoch, heads)  # warm-up
    cached_epoch = float(np.mean([sum(run_steps(cached, epoch, heads)) for _ in range(epochs)]))
    reencode = []
    for _ in range(epochs):
        start = time.perf_counter()
        run_steps(EmbeddingInputs(model.encoder.encode(texts, batch_size=64)), epoch, heads)
        reencode.append(time.perf_counter() - start)
    reencode_epoch = float(np.mean(reencode))

    layer = len(model.encoder_layers()) - 2
    top2 = get("top2_unfrozen").phases[0]
    cached_layers = LayerInputs(cached_layer_states(model.encoder, texts, layer, show_progress=False), layer)
    tokens = TokenInputs(model.encoder.tokenizer, texts, max_seq_length)
    batches = [np.random.default_rng([seed, i]).choice(n, batch_size, replace=False) for i in range(steps + 2)]
    cached_step = float(np.median(run_steps(cached_layers, batches, top2)[2:]))  # 2 warm-up steps
    full_step = float(np.median(run_steps(tokens, batches, top2)[2:]))
    lower_forward = float(np.median(lower_forward_seconds(model, tokens, batches, layer)[2:]))
    return {"n_texts": n, "batch_size": batch_size,
            "heads_epoch_cached_s": cached_epoch, "heads_epoch_reencode_s": reencode_epoch,
            "heads_epoch_ratio": reencode_epoch / cached_epoch,
            "top2_step_cached_s": cached_step, "top2_step_full_forward_s": full_step,
            "top2_step_ratio": full_step / cached_step, "top2_lower_forward_s": lower_forward,
            "top2_step_ratio_bound": full_step / max(full_step - lower_forward, 1e-9)}


def timed_steps(model: MultiTaskModel, inputs, batches, labels: torch.Tensor, task: str) -> list[float]:
    """Seconds of each training step (forward, backward, AdamW update) on ``batches``, training
    whatever is trainable now: the bare step, for timing benchmarks."""
    import time

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    times = []
    for idx in batches:
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(inputs.logits(model, idx, task), labels[idx])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def lower_forward_seconds(model: MultiTaskModel, tokens: TokenInputs, batches, layer: int) -> list[float]:
    """Seconds of collating the token batch, the embeddings and the first ``layer`` blocks alone,
    per batch, in training mode (dropout on, as inside a full training step): the work a cache of
    their outputs removes (without the collation the bound comes out low and can fall below the
    measured ratio)."""
    import time

    model.train()
    times = []
    for idx in batches:
        start = time.perf_counter()
        batch = tokens.batch(idx)
        model.encoder.hidden_states_at(layer, batch["input_ids"], batch["attention_mask"],
                                       batch.get("token_type_ids"))
        times.append(time.perf_counter() - start)
    model.eval()
    return times
