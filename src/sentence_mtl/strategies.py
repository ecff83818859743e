"""Freezing and transfer strategies as small declarative objects (notebook 03).

A strategy says *what* trains and *how*; ``strategy_training`` trains one, ``experiments.freezing`` runs the study. Four kinds:

- ``no_training``: the whole network frozen, nothing learned by gradient (zero-shot by label
  descriptions, nearest class centroid, the two combined as a label prior).
- ``frozen_encoder``: backbone frozen, heads trained on cached sentence embeddings.
- ``cached_top_k``: the top k blocks and the heads train on cached outputs of the frozen lower
  blocks (``cache.cached_layer_states``), so the lower blocks never run during training.
- ``self_training``: backbone frozen; the label prior pseudo-labels the unlabeled training
  texts and a logistic regression learns from the labelled plus the most confident ones
  (``semi_supervised``).
- ``contrastive``: the encoder fine-tuned contrastively on the labelled examples with the label
  descriptions as anchors, then the label prior on the tuned encoder (``anchored_contrastive``);
  one task at a time, as SetFit. With ``self_training`` set, self-training follows on the tuned
  encoder. Strategies with ``self_training`` are the ones that read unlabeled texts.
- ``finetune``: tokens in, backbone parts trainable per phase; covers full fine-tuning,
  gradual unfreezing, layer-wise learning-rate decay, LoRA, and LP-FT (``linear_probe_first``:
  the heads first learn on the frozen encoder's cached embeddings, then everything trains).

Part names are those of ``MultiTaskModel.set_trainable``: ``encoder``, ``top.<k>``, ``heads``,
``head.<task>``; ``lora`` means the LoRA adapter weights only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Phase:
    """Parts trainable for a share of the training steps."""

    trainable: tuple[str, ...]
    share: float = 1.0


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")


@dataclass(frozen=True)
class SelfTrainingSettings:
    pseudo_per_class: int = 2048  # most confident pseudo-labels kept per class and round
    rounds: int = 2
    labelled_weight: float = 3.0  # a real label counts as this many pseudo-labels
    inverse_regularisation: float = 1.0  # scikit-learn's C
    # unlabeled texts drawn at random from the training set; None: all of it (encoded once, when frozen)
    unlabeled_pool: int | None = field(default=None, metadata={"keyed_when_set": True})


@dataclass(frozen=True)
class ContrastiveSettings:
    """The contrastive stage of ``anchored_contrastive``: steps, batch composition, loss and optimiser."""

    steps: int = 45  # at 8 per class about SetFit's cost here (its 80 pair batches of 16)
    per_class: int = 8  # labelled examples of each class in a batch (all of them when a class has fewer)
    temperature: float = 0.05  # these two chosen on AG News validation texts at 8 per class, seeds 0 and 1
    lr: float = 5e-5
    warmup_ratio: float = 0.1


@dataclass(frozen=True)
class Strategy:
    name: str
    kind: str  # no_training | frozen_encoder | cached_top_k | finetune
    phases: tuple[Phase, ...] = ()
    top_k: int | None = None  # cached_top_k: blocks trained above the cache
    layer_decay: float | None = None  # lr(block l) = encoder_lr * decay ** (L - 1 - l)
    lora: LoraSettings | None = None
    self_training: SelfTrainingSettings | None = None
    # keyed only when set: the run store's keys of the strategies stored before it existed stay valid
    contrastive: ContrastiveSettings | None = field(default=None, metadata={"keyed_when_set": True})
    linear_probe_first: bool = False  # finetune: heads fitted on the frozen encoder's embeddings first
    encoder_lr: float = 1e-4
    head_lr: float = 2e-3
    summary: str = ""

    @property
    def reads_unlabeled(self) -> bool:
        """Also learns from unlabeled training texts, which the labelled-only strategies and SetFit never see."""
        return self.self_training is not None


def gradual_unfreezing_phases(n_phases: int = 4) -> tuple[Phase, ...]:
    """ULMFiT's schedule: the heads alone, then the top block too, then one more block per phase."""
    phases = [Phase(("heads",), 1 / n_phases)]
    phases += [Phase(("heads", f"top.{k}"), 1 / n_phases) for k in range(1, n_phases)]
    return tuple(phases)


# What each kind freezes, as a reader groups them (figures draw one panel per family).
FAMILY_OF_KIND = {"no_training": "whole network frozen", "self_training": "backbone frozen",
                  "frozen_encoder": "backbone frozen", "cached_top_k": "top blocks trained",
                  "contrastive": "whole encoder trained", "finetune": "whole encoder trained"}

ULMFIT_DECAY = 1 / 2.6  # Howard & Ruder 2018: lr of layer l-1 = lr of layer l / 2.6

STRATEGIES: dict[str, Strategy] = {s.name: s for s in [
    Strategy("majority_class", "no_training",
             summary="the floor: every text gets the training set's most common class"),
    Strategy("zero_shot", "no_training",
             summary="whole network frozen; cosine similarity to a description of each label"),
    Strategy("nearest_centroid", "no_training",
             summary="whole network frozen; cosine similarity to the mean embedding of each class"),
    Strategy("label_prior", "no_training",
             summary="whole network frozen; each class = mean of its examples + its label description"),
    Strategy("self_training", "self_training", self_training=SelfTrainingSettings(),
             summary="backbone frozen; the label prior pseudo-labels the unlabeled training texts, "
                     "logistic regression on labelled + 2,048 most confident per class, 2 rounds"),
    Strategy("frozen_backbone", "frozen_encoder", phases=(Phase(("heads",)),),
             summary="backbone frozen; heads trained on cached sentence embeddings"),
    Strategy("top1_unfrozen", "cached_top_k", phases=(Phase(("heads", "top.1")),), top_k=1,
             summary="top block + heads trained on cached outputs of the 5 frozen blocks below"),
    Strategy("top2_unfrozen", "cached_top_k", phases=(Phase(("heads", "top.2")),), top_k=2,
             summary="top 2 blocks + heads trained on cached outputs of the 4 frozen blocks below"),
    Strategy("full_finetune", "finetune", phases=(Phase(("heads", "encoder")),),
             summary="every weight trained"),
    Strategy("gradual_unfreezing", "finetune", phases=gradual_unfreezing_phases(4),
             summary="heads, then + top block, then one more block per phase (ULMFiT)"),
    Strategy("llrd_0.95", "finetune", phases=(Phase(("heads", "encoder")),), layer_decay=0.95,
             summary="all weights; lr of block l = lr_top x 0.95^(L-1-l)"),
    Strategy("llrd_2.6", "finetune", phases=(Phase(("heads", "encoder")),), layer_decay=ULMFIT_DECAY,
             summary="all weights; lr of block l = lr_top / 2.6^(L-1-l) (ULMFiT)"),
    Strategy("lp_ft", "finetune", phases=(Phase(("heads", "encoder")),), linear_probe_first=True,
             summary="heads first trained alone on cached embeddings of the frozen encoder (a linear probe), "
                     "then every weight trained (LP-FT, Kumar et al. 2022)"),
    Strategy("anchored_contrastive", "contrastive", contrastive=ContrastiveSettings(),
             summary="the encoder fine-tuned with a supervised contrastive loss on the labelled examples, each "
                     "label's description an anchor in every batch; then the label prior on it (after AncSetFit, "
                     "Pauli et al. 2023)"),
    Strategy("anchored_self_training", "contrastive", contrastive=ContrastiveSettings(),
             self_training=SelfTrainingSettings(unlabeled_pool=20_000),
             summary="anchored_contrastive, then self-training on its tuned encoder: the label prior pseudo-labels "
                     "20,000 unlabeled training texts, logistic regression on labelled + most confident, 2 rounds"),
    Strategy("lora", "finetune", phases=(Phase(("heads", "lora")),), lora=LoraSettings(), encoder_lr=1e-3,
             summary="backbone frozen; rank-8 LoRA adapters on every linear layer + heads (peft)"),
]}


def get(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    return STRATEGIES[name]


def families(names) -> dict[str, list[str]]:
    """Strategies grouped by ``FAMILY_OF_KIND`` in declaration order; names that are not
    strategies here (a peer such as SetFit) join the last family."""
    grouped: dict[str, list[str]] = {family: [] for family in dict.fromkeys(FAMILY_OF_KIND.values())}
    for name in names:
        kind = STRATEGIES[name].kind if name in STRATEGIES else "finetune"
        grouped[FAMILY_OF_KIND[kind]].append(name)
    return {family: members for family, members in grouped.items() if members}
