"""The WiSE-FT figure (``results/robustness.json``): in-domain validation against out of domain, one
point per interpolation weight alpha."""

from __future__ import annotations

from pathlib import Path

from . import plots

AXIS = {
    "uci_sentences": "review sentences (pos. vs neg.)",
    "airline_sentiment": "airline tweets (macro recall)",
}
TITLE = {"uci_sentences": "review sentences", "airline_sentiment": "airline tweets"}


def wise_ft_figure(result: dict, figures_dir: Path):
    """Validation metric in domain against the out-of-domain metric, one point per alpha."""
    fig, axes = plots.plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    curve = result["alphas"]
    x = [c["validation"]["sentiment"] for c in curve]
    for ax, name in zip(axes, ("uci_sentences", "airline_sentiment")):
        y = [c["out_of_domain"][name]["value"] for c in curve]
        ax.plot(x, y, "-o", color=plots.PALETTE[0], markersize=4)
        for c, xi, yi in zip(curve, x, y):
            if c["alpha"] in (0.0, 0.5, 1.0) or c["alpha"] == result["chosen_alpha"]:
                label = f"α={c['alpha']:.1f}" + (" (chosen)" if c["alpha"] == result["chosen_alpha"] else "")
                left = 0 < c["alpha"] < 1  # inner labels to the upper left, clear of the curve
                ax.annotate(
                    label,
                    (xi, yi),
                    textcoords="offset points",
                    xytext=(-8, 8) if left else (6, 3),
                    ha="right" if left else "left",
                    fontsize=8,
                )
        ax.set_xlabel("TweetEval validation macro recall")
        ax.set_ylabel(AXIS[name])
        ax.set_title(TITLE[name], fontsize=10)
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    fig.suptitle("WiSE-FT: from the frozen encoder (α=0) to the fine-tuned model (α=1)", fontsize=11)
    fig.tight_layout()
    plots.save(fig, "robustness_wise_ft", figures_dir)
    return fig
