"""``make figures`` redraws the record-derived figures from ``results/`` alone."""

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.reporting.figures import LEARNING_PANELS, redraw


def test_figures_are_redrawn_from_the_committed_records(tmp_path):
    drawn = redraw(REPO_ROOT / "results", tmp_path)
    assert {"learning_curves", "forgetting_chart", "sampling_weighting", "scifact_ndcg", "wise_ft",
            "headline_scores", "loop_headline_scores"} <= set(
        drawn
    )
    names = {p.stem for p in tmp_path.glob("*.png")}
    assert {
        "03_learning_curves",
        "03_forgetting",
        "03_headline_scores",
        "04_headline_scores",
        "04_sampling_weighting",
        "05_scifact_ndcg",
        "robustness_wise_ft",
        "02_architecture",
    } <= names


def test_learning_curve_panels_hold_at_most_five_lines():
    assert all(len(members) <= 5 for members in LEARNING_PANELS.values())
