"""The multi-task model as a figure: encoder, pooling, one head per task, and what each family
of strategies trains. Drawn from the strategy registry, so a new strategy kind appears here."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from .plots import save

# The model's parts, bottom to top, and which of them each kind of strategy trains.
PARTS = ("token embeddings", "blocks 1-4", "blocks 5-6", "mean pooling + L2 norm", "task heads")
TRAINS = {  # kind -> trained parts (the rest frozen); pooling and L2 norm have no weights
    "no_training": (),
    "frozen_encoder": ("task heads",),
    "self_training": ("task heads",),
    "cached_top_k": ("blocks 5-6", "task heads"),
    "lora": ("blocks 1-4", "blocks 5-6", "task heads"),  # rank-8 adapters on the blocks' linear layers
    "finetune": ("token embeddings", "blocks 1-4", "blocks 5-6", "task heads"),
}
COLUMNS = (("whole\nnetwork\nfrozen", "no_training"), ("backbone\nfrozen", "frozen_encoder"),
           ("top 2\nblocks\n(lower\ncached)", "cached_top_k"), ("LoRA", "lora"),
           ("full,\nLLRD,\ngradual,\nLP-FT", "finetune"))


def _box(ax, x, y, w, h, text, colour, size=9):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor="0.3", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def architecture_figure(tasks: dict[str, int], dim: int = 384, name=None, figures_dir=None):
    """Left: text -> encoder -> pooled vector -> a linear head per task (``tasks``: name -> classes).
    Right: a grid of which parts each strategy family trains."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1.1, 1]})
    for ax in (left, right):
        ax.set_axis_off()
    left.set_xlim(0, 10)
    left.set_ylim(0, 10)
    _box(left, 2.5, 0.2, 5, 0.9, "text → WordPiece tokens (max 128)", "white")
    _box(left, 2.5, 1.5, 5, 0.9, "token embeddings", "#dbe9f6")
    _box(left, 2.5, 2.7, 5, 1.3, "transformer blocks 1-4", "#dbe9f6")
    _box(left, 2.5, 4.3, 5, 1.0, "transformer blocks 5-6", "#b7d3ee")
    _box(left, 2.5, 5.7, 5, 0.9, f"mean pooling + L2 norm → {dim}-d vector", "#fde8d7")
    left.text(1.9, 3.4, "shared encoder:\none pass serves\nevery task", ha="right", va="center", fontsize=8,
              style="italic")
    width = 9.4 / max(len(tasks), 1)
    for i, (task, classes) in enumerate(tasks.items()):
        x = 0.3 + i * width
        _box(left, x + 0.1, 8.1, width - 0.2, 1.2, f"{task} head\nlinear {dim}→{classes}", "#d9f0e3", size=8)
        left.annotate("", (x + width / 2, 8.1), (5, 6.6), arrowprops={"arrowstyle": "->", "color": "0.3"})
    for y0, y1 in ((1.1, 1.5), (2.4, 2.7), (4.0, 4.3), (5.3, 5.7)):
        left.annotate("", (5, y1), (5, y0), arrowprops={"arrowstyle": "->", "color": "0.3"})
    left.set_title("The multi-task model", fontsize=10)

    right.set_xlim(0, len(COLUMNS) + 1.6)
    right.set_ylim(-0.2, len(PARTS) + 1.9)
    for row, part in enumerate(PARTS):
        right.text(1.55, row + 0.5, part, ha="right", va="center", fontsize=8)
        for col, (_, kind) in enumerate(COLUMNS):
            trained = part in TRAINS[kind]
            weightless = part == "mean pooling + L2 norm"
            colour = "0.95" if weightless else "#e4572e" if trained else "#9ec5e8"
            label = "no weights" if weightless else ("adapters" if kind == "lora" and trained and part != "task heads"
                                                     else "trained" if trained else "frozen")
            right.add_patch(plt.Rectangle((1.65 + col, row + 0.08), 0.9, 0.84, facecolor=colour, edgecolor="white"))
            right.text(2.1 + col, row + 0.5, label, ha="center", va="center", fontsize=6.5,
                       color="white" if trained and not weightless else "black")
    for col, (title, _) in enumerate(COLUMNS):
        right.text(2.1 + col, len(PARTS) + 0.1, title, ha="center", va="bottom", fontsize=7)
    right.set_title("What each strategy trains (red) and freezes (blue)", fontsize=10)
    fig.tight_layout()
    return save(fig, name, figures_dir)
