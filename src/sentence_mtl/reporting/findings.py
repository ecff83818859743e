"""The freezing study's findings as Markdown, every number read from its records.

Notebook 03 ends with ``Markdown(freezing_findings(records))``, so its conclusions are rendered
from the run that sits above them and can never disagree with it. Every compared strategy is
scored on the same test items; a comparison is a paired difference with its 95% interval
(``analysis.paired``), called a tie when the interval holds zero.
"""

from __future__ import annotations

import numpy as np

from ..experiments.analysis import VERDICT_WORDS, paired, same_test_items
from ..references import value as published

TOPIC, SENTIMENT = "topic", "sentiment"
SIZES = (8, 32, 64, 128, 512)


def _signed(points: float) -> str:
    text = f"{points:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


class Runs:
    """Look-ups over the records of notebook 03 (the sequential runs' stages kept apart)."""

    def __init__(self, records: list[dict]):
        self.records = [r for r in records if r["task"] in (TOPIC, SENTIMENT)]
        self.speed = {r["strategy"]: r for r in records if r["task"] == "cache_benchmark"}

    def values(self, strategy: str, task: str, k, key: str = "value") -> list[float]:
        return [r[key] for r in self.records if r["strategy"] == strategy and r["task"] == task
                and r["n_per_class"] == k and not r.get("stage") and r.get(key) is not None]

    def mean(self, strategy: str, task: str, k, key: str = "value") -> float | None:
        values = self.values(strategy, task, k, key)
        return float(np.mean(values)) if values else None

    def std(self, strategy: str, task: str, k) -> float:
        values = self.values(strategy, task, k)
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def pct(self, strategy: str, task: str, k, key: str = "value", spread: bool = True) -> str:
        """``mean ± std`` in percent (the mean alone for one seed or ``spread=False``)."""
        values = self.values(strategy, task, k, key)
        if not values:
            return "n/a"
        text = f"{100 * np.mean(values):.1f}"
        return text + (f" ± {100 * np.std(values, ddof=1):.1f}" if spread and len(values) > 1 else "")

    def gap(self, a: str, b: str, task: str, k) -> float | None:
        """Points by which ``a`` is above ``b`` (mean over seeds)."""
        ma, mb = self.mean(a, task, k), self.mean(b, task, k)
        return None if ma is None or mb is None else 100 * (ma - mb)

    def versus(self, a: str, b: str, task: str, k) -> str:
        """The paired gap of ``a`` over ``b`` in points with its 95% interval, and the verdict."""
        d = paired(self.records, a, b, task, k)
        if d is None:
            return "not measured"
        return (f"{_signed(100 * d['mean'])} points, 95% CI {_signed(100 * d['low'])} to {_signed(100 * d['high'])}: "
                f"{VERDICT_WORDS[d['verdict']]}")

    def sizes(self, *strategies: str, task: str = TOPIC) -> list:
        return [k for k in SIZES if all(self.values(s, task, k) for s in strategies)]

    def gap_range(self, a: str, b: str, task: str = TOPIC) -> str:
        gaps = [self.gap(a, b, task, k) for k in self.sizes(a, b, task=task)]
        if not gaps:
            return "n/a"
        lo, hi = min(gaps), max(gaps)
        return _signed(lo) if abs(hi - lo) < 0.05 else f"{_signed(lo)} to {_signed(hi)}"

    def median(self, strategy: str, key: str) -> float | None:
        values = [r[key] for r in self.records if r["strategy"] == strategy and r.get(key) is not None]
        return float(np.median(values)) if values else None

    def best(self, task: str, k, exclude=()) -> tuple[str, float] | None:
        """The strategy with the best mean at k, among those not excluded."""
        means = {s: self.mean(s, task, k) for s in {r["strategy"] for r in self.records}
                 if s not in exclude and not s.startswith("sequential_")}
        means = {s: m for s, m in means.items() if m is not None}
        return max(means.items(), key=lambda kv: kv[1]) if means else None


def _frozen(runs: Runs) -> list[str]:
    zs_t, zs_s = runs.pct("zero_shot", TOPIC, 0), runs.pct("zero_shot", SENTIMENT, 0)
    lines = [f"- **Whole network frozen.** Zero-shot from four short label descriptions reaches {zs_t} on AG News "
             f"and {zs_s} on TweetEval; the nearest class centroid of 8 examples per class reaches "
             f"{runs.pct('nearest_centroid', TOPIC, 8)} and {runs.pct('nearest_centroid', SENTIMENT, 8)}, and of every "
             f"training example {runs.pct('nearest_centroid', TOPIC, None)} and "
             f"{runs.pct('nearest_centroid', SENTIMENT, None)}. The pretrained geometry separates topics; it "
             "separates sentiment much less, which a general sentence-similarity model was never trained to "
             "encode. *Use it* with no labels, or as the floor any training must beat."]
    best8 = runs.best(SENTIMENT, 8, exclude=("label_prior",))
    lines.append(
        f"- **The label names are data.** Adding each label's description to its class centroid (the label prior) "
        f"costs nothing: at 8 per class it reaches {runs.pct('label_prior', TOPIC, 8)} on topic against "
        f"{runs.pct('nearest_centroid', TOPIC, 8)} for the centroid alone "
        f"({runs.versus('label_prior', 'nearest_centroid', TOPIC, 8)}), and {runs.pct('label_prior', SENTIMENT, 8)} "
        "on sentiment"
        + (f" against {runs.pct(best8[0], SENTIMENT, 8)} for the best other strategy there, `{best8[0]}` "
           f"({runs.versus('label_prior', best8[0], SENTIMENT, 8)})." if best8 else "."))
    heads = runs.speed.get("heads_epoch_ratio")
    lines.append(
        f"- **Backbone frozen.** Heads on cached embeddings train in seconds and reach "
        f"{runs.pct('frozen_backbone', TOPIC, None, key='full_test_value')} (topic) and "
        f"{runs.pct('frozen_backbone', SENTIMENT, None, key='full_test_value')} (sentiment; the published SVM: "
        f"{100 * published('tweeteval_svm'):.1f}) on the full test sets from the whole training sets; "
        f"at 8 per class {runs.pct('frozen_backbone', TOPIC, 8)} on topic against the centroids' "
        f"{runs.pct('nearest_centroid', TOPIC, 8)} ({runs.versus('frozen_backbone', 'nearest_centroid', TOPIC, 8)})."
        + (f" The cache makes a heads-only epoch {heads['value']:.0f}x cheaper than re-encoding the texts "
           f"(target 100x: {'met' if heads['value'] >= 100 else 'missed'})." if heads else "")
        + " *Use it* when many tasks share one encoder that must not drift, or compute is tiny.")
    return lines


def _self_training(runs: Runs) -> list[str]:
    accuracy = {t: [100 * a for k in SIZES for a in runs.values("self_training", t, k, "pseudo_label_accuracy")]
                for t in (TOPIC, SENTIMENT)}
    ranges = {t: f"{min(a):.0f}-{max(a):.0f}%" if a else "n/a" for t, a in accuracy.items()}
    return [f"- **Backbone frozen, unlabeled texts used (self-training).** On topic at 8 per class: "
            f"{runs.pct('self_training', TOPIC, 8)} "
            f"({runs.pct('self_training', TOPIC, 8, key='full_test_value', spread=False)} on the full test set), "
            f"against {runs.pct('label_prior', TOPIC, 8)} for the label prior it "
            f"starts from ({runs.versus('self_training', 'label_prior', TOPIC, 8)}); at 512 per class {runs.pct('self_training', TOPIC, 512)}. Its pseudo-labels are "
            f"{ranges[TOPIC]} correct on topic, where the pretrained geometry already clusters by class, but "
            f"{ranges[SENTIMENT]} on sentiment, where at 8 per class it reaches {runs.pct('self_training', SENTIMENT, 8)} "
            f"against the prior's {runs.pct('label_prior', SENTIMENT, 8)} "
            f"({runs.versus('self_training', 'label_prior', SENTIMENT, 8)}): it amplifies what the prior "
            "gets right, and what it gets wrong. It is the only strategy here that reads unlabeled texts. *Use it* "
            "when in-domain unlabeled text is plentiful and a zero-shot check shows the embedding separates the "
            "classes."]


def _encoder(runs: Runs) -> list[str]:
    top2 = runs.speed.get("top2_step_ratio")
    full_s, top2_s = runs.median("full_finetune", "train_seconds"), runs.median("top2_unfrozen", "train_seconds")
    full_mb = runs.median("full_finetune", "training_memory_mb")
    top2_mb = runs.median("top2_unfrozen", "training_memory_mb")
    lines = [f"- **Top-k unfrozen on a cache.** Unfreezing the top two blocks moves topic by "
             f"{runs.gap_range('top2_unfrozen', 'frozen_backbone')} points against the frozen backbone from 8 to 512 "
             f"per class, at a median "
             + (f"{top2_s:.0f} s of training against {full_s:.0f} s for full fine-tuning and "
                f"{top2_mb:.0f} MB of training memory against {full_mb:.0f}" if full_s and top2_s and full_mb and top2_mb
                else "fraction of full fine-tuning's cost")
             + f"; against full fine-tuning it is {runs.gap_range('top2_unfrozen', 'full_finetune')} points. One block "
             f"moves topic by {runs.gap_range('top1_unfrozen', 'frozen_backbone')} against the frozen backbone."
             + (f" A top-2 step on cached lower-block outputs is {top2['value']:.2f}x faster than a full forward with "
                f"those blocks frozen (target 2x: {'met' if top2['value'] >= 2 else 'missed'}); the cache removes the "
                f"lower blocks' forward ({1000 * top2['top2_lower_forward_s']:.0f} of "
                f"{1000 * top2['top2_step_full_forward_s']:.0f} ms, batch collation included) and nothing else, so "
                f"{top2['top2_step_ratio_bound']:.2f}x is about the most any such cache can give here." if top2 else "")]
    lora_share = 100 * (runs.median("lora", "trainable_params") or 0) / (runs.median("full_finetune", "trainable_params") or 1)
    lines.append(
        f"- **Whole-encoder strategies.** Full fine-tuning reaches {runs.pct('full_finetune', TOPIC, 8)} on topic at 8 "
        f"per class (against the frozen backbone: {runs.versus('full_finetune', 'frozen_backbone', TOPIC, 8)}) and "
        f"{runs.pct('full_finetune', TOPIC, 512)} / {runs.pct('full_finetune', SENTIMENT, 512)} (topic / sentiment) "
        f"at 512. Against it, by size from 8 to 512 per class on topic: layer-wise decay 0.95 "
        f"{runs.gap_range('llrd_0.95', 'full_finetune')} points, ULMFiT's /2.6 "
        f"{runs.gap_range('llrd_2.6', 'full_finetune')}, gradual unfreezing "
        f"{runs.gap_range('gradual_unfreezing', 'full_finetune')}, LoRA {runs.gap_range('lora', 'full_finetune')}, "
        f"with {lora_share:.1f}% of the trainable parameters, for a median "
        f"{runs.median('lora', 'train_seconds') or 0:.0f} s of training against {full_s or 0:.0f} s and "
        f"{runs.median('lora', 'training_memory_mb') or 0:.0f} MB of training memory against {full_mb or 0:.0f} "
        "(every block still runs forward and backward, and each adapted layer keeps its input for the adapter). "
        "ULMFiT's decay barely moves the lower blocks in a short run; gradual unfreezing spends part of its "
        "steps on the heads alone.")
    lines.append(
        f"- **LP-FT: fit the heads first, then fine-tune.** Against full fine-tuning, by size from 8 to 512 per "
        f"class: {runs.gap_range('lp_ft', 'full_finetune')} points on topic and "
        f"{runs.gap_range('lp_ft', 'full_finetune', SENTIMENT)} on sentiment; at 64 per class "
        f"{runs.pct('lp_ft', TOPIC, 64)} against {runs.pct('full_finetune', TOPIC, 64)} (topic) and "
        f"{runs.pct('lp_ft', SENTIMENT, 64)} against {runs.pct('full_finetune', SENTIMENT, 64)} (sentiment). Random "
        "heads send noisy gradients into the encoder for the first steps of full fine-tuning; a probe on cached "
        "embeddings (a second or two) removes them.")
    setfit_s = runs.median("setfit", "train_seconds")
    lines.append(
        f"- **The peer.** SetFit, run here on the same samples and backbone, reaches {runs.pct('setfit', TOPIC, 8)} "
        f"at 8 per class (against full fine-tuning: {runs.versus('setfit', 'full_finetune', TOPIC, 8)}; against "
        f"LP-FT: {runs.versus('setfit', 'lp_ft', TOPIC, 8)}) and {runs.pct('setfit', TOPIC, 64)} at 64 (against "
        f"LP-FT: {runs.versus('setfit', 'lp_ft', TOPIC, 64)}), for a median {setfit_s or 0:.0f} s of training per "
        f"model against {full_s or 0:.0f} s for full fine-tuning (pairs double the sentences per step).")
    ours = "anchored_contrastive"
    if runs.values(ours, TOPIC, 8):
        by_size = "; ".join(f"{task} {k}/class {runs.pct(ours, task, k)} against {runs.pct('setfit', task, k)}, "
                            f"{runs.versus(ours, 'setfit', task, k)}"
                            for task in (TOPIC, SENTIMENT) for k in runs.sizes(ours, "setfit", task=task))
        lines.append(
            f"- **Our labelled-only recipe against the peer.** `{ours}` (a supervised contrastive fine-tune with "
            f"each label's description as an anchor in every batch, then the label prior) against SetFit on the "
            f"same samples and test items: {by_size}. It reads no unlabeled text; median "
            f"{runs.median(ours, 'train_seconds') or 0:.0f} s of training per model.")
    return lines


def _sequential(records: list[dict]) -> list[str]:
    from ..experiments.analysis import forgetting

    staged = [r for r in records if r.get("stage")]
    if not staged:
        return []
    table = forgetting(records).groupby("strategy")["forgetting"].agg(["mean", "std"])
    sentiment = {s: np.mean([r["value"] for r in staged if r["strategy"] == s and r["task"] == SENTIMENT])
                 for s in table.index}
    parts = [f"{name.replace('sequential_', '').replace('_', ' ')}: {100 * m:.1f} ± {100 * (0 if np.isnan(sd) else sd):.1f} "
             f"points forgotten, sentiment {100 * sentiment[name]:.1f}" for name, (m, sd) in table.iterrows()]
    return ["- **One head frozen, in sequence.** Topic first, then sentiment added with the topic head frozen; "
            "topic accuracy lost, mean ± std over seeds, by what stage 2 trains: " + "; ".join(parts) + ". A frozen "
            "head does not protect its task when the encoder under it moves; a frozen backbone forgets nothing "
            "by construction but gives the new task only a head; adapters sit between."]


def freezing_findings(records: list[dict]) -> str:
    """Notebook 03's "what it means", as Markdown rendered from its records."""
    runs = Runs(records)
    majority = {t: runs.pct("majority_class", t, None, spread=False) for t in (TOPIC, SENTIMENT)}
    lines = ["*(Rendered from the records above: topic is AG News accuracy (majority class "
             f"{majority[TOPIC]}), sentiment TweetEval macro recall (majority class {majority[SENTIMENT]}); "
             + ("every strategy on the same stratified test subsets" if same_test_items(runs.records) else
                "frozen strategies on the full test sets, the others on stratified subsets")
             + "; mean ± std over seeds; a comparison is the paired "
             "difference in points, positive when the first strategy is ahead, with its 95% interval over seeds "
             "and test items, and called a tie when that interval holds zero.)*", ""]
    lines += _frozen(runs) + _self_training(runs) + _encoder(runs) + _sequential(records)
    return "\n".join(lines)
