"""The written text and the measured numbers stay apart: templates hold words, claims hold numbers.

A template types no number outside a slot; every slot names a claim that exists; the README and
``docs/`` in the repository are what a fresh render gives.
"""

from __future__ import annotations

import re

import jinja2
import pytest
from jinja2 import nodes

from sentence_mtl.config import REPO_ROOT
from sentence_mtl.reporting import claims as claims_module
from sentence_mtl.reporting.claims_headline import printable_row
from sentence_mtl.reporting.filters import SlotError, ci, pct, pts
from sentence_mtl.reporting.render import TARGETS, TEMPLATES, environment, render

TEMPLATE_FILES = sorted(p for p in TEMPLATES.rglob("*.j2"))
# Question and notebook numbers, and the confidence level, are names rather than results.
ALLOWED = {"1", "2", "3", "4", "5", "01", "02", "03", "04", "05", "95%"}
NUMBER = re.compile(r"(?<![\w.@/-])\d+(?:,\d{3})*(?:\.\d+)?%?(?![\w/])")


@pytest.fixture(scope="module")
def claims():
    return claims_module.build()


def prose(template: str) -> str:
    """What a reader sees typed by hand: slots, tags, comments, code and link targets removed."""
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", template, flags=re.S)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)|<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"^(#+) \d+ ·", r"\1", text, flags=re.M)  # a section's number
    return re.sub(r"(et\s+al\.)\s+(19|20)\d\d", r"\1", text)  # a citation's year names a paper


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_type_no_number_outside_a_slot(path):
    typed = [m for m in NUMBER.findall(prose(path.read_text())) if m not in ALLOWED]
    assert not typed, f"{path.name} types numbers {typed}: make each a claim and print it through a slot"


def test_prose_check_catches_a_typed_number():
    assert NUMBER.findall(prose("scores 91.8% ({{ c.x | ci }}) on `make train`, 23 seeds, notebook 03")) == [
        "91.8%",
        "23",
        "03",
    ]


def _claims_named(ast) -> set[str]:
    named = {
        n.attr for n in ast.find_all(nodes.Getattr) if isinstance(n.node, nodes.Name) and n.node.name == "c"
    }
    named |= {
        n.arg.value
        for n in ast.find_all(nodes.Getitem)
        if isinstance(n.node, nodes.Name) and n.node.name == "c" and isinstance(n.arg, nodes.Const)
    }
    return named


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_every_slot_names_an_existing_claim(path, claims):
    ast = environment().parse(path.read_text())
    missing = sorted(_claims_named(ast) - set(claims))
    assert not missing, f"{path.name} names claims that results/ does not give: {missing}"


def test_a_missing_claim_fails_the_render():
    env = environment()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ c.no_such_claim | pct }}").render(c={})


def test_filters_refuse_a_claim_of_another_unit():
    diff = {"value": 0.036, "low": 0.026, "high": 0.047, "unit": "points", "source": "t"}
    rate = {"value": 0.918, "low": 0.912, "high": 0.924, "unit": "percent", "source": "t"}
    assert (pts(diff), ci(diff), pct(rate), ci(rate)) == (
        "+3.6 points",
        "95% CI +2.6 to +4.7",
        "91.8%",
        "95% CI 91.2–92.4",
    )
    with pytest.raises(SlotError):
        pct(diff)


def test_rendered_files_are_current(claims):
    stale = [t for t, text in render(claims).items() if (REPO_ROOT / t).read_text() != text]
    assert not stale, f"{stale} differ from a fresh render: run `make docs`"


def test_claims_json_is_current(claims):
    import json

    committed = json.loads(claims_module.CLAIMS_JSON.read_text())
    assert committed == json.loads(json.dumps(claims)), "results/claims.json is stale: run `make docs`"


def test_readme_answers_stay_short(claims):
    readme = render(claims)["README.md"]
    answers = readme[readme.index("<!-- answers:start -->") : readme.index("<!-- answers:end -->")]
    assert (
        len(answers.split()) <= 650
    ), f"the README's answers run to {len(answers.split())} words (at most 650)"
    section = readme[readme.index("## Answers") :].split("\n## ")[0]  # what a reviewer reads first
    assert len(section.split()) <= 650, f"the '## Answers' section runs to {len(section.split())} words"
    assert len(readme.split()) <= 2500
    assert set(TARGETS) == {"README.md", "docs/results.md", "docs/service.md", "docs/usage.md"}


def test_conclusion_cells_are_replaced_in_twin_and_notebook():
    import json

    from sentence_mtl.reporting.render import conclusion_in_notebook, conclusion_in_twin

    twin = "x = 1\n\n# %% [markdown]\n# <!-- conclusion:start -->\n# old\n# <!-- conclusion:end -->\n\n# %%\ny = 2\n"
    new = conclusion_in_twin(twin, "**New.**\n\n- a")
    assert (
        "# **New.**\n#\n# - a\n# <!-- conclusion:end -->" in new
        and "old" not in new
        and new.endswith("y = 2\n")
    )
    cells = [
        {
            "cell_type": "markdown",
            "source": ["<!-- conclusion:start -->\n", "old\n", "<!-- conclusion:end -->"],
        },
        {"cell_type": "code", "source": ["y = 2"], "outputs": [{"text": "2"}]},
    ]
    notebook = json.loads(conclusion_in_notebook(json.dumps({"cells": cells}), "New."))
    assert (
        "".join(notebook["cells"][0]["source"]) == "<!-- conclusion:start -->\nNew.\n<!-- conclusion:end -->"
    )
    assert notebook["cells"][1] == cells[1]


def test_the_report_summary_names_existing_claims(claims):
    from sentence_mtl.reporting.report import summary_claims

    named = summary_claims()
    assert named and not set(named) - set(
        claims
    ), f"report.typ names missing claims: {set(named) - set(claims)}"


def test_headline_records_come_from_results_and_the_run_store(tmp_path):
    import json

    from sentence_mtl.reporting.claims_headline import headline_records

    run = {"headline": True, "task": "topic", "strategy": "lp_ft", "n_per_class": 8, "seed": 0, "value": 0.9}
    (tmp_path / "headline.json").write_text(json.dumps([run, {**run, "headline": False, "seed": 1}]))
    from sentence_mtl.experiments.store import DamagedRecord, content_hash

    (tmp_path / "store" / "headline").mkdir(parents=True)
    entry = {"key": "k", "records": [run, {**run, "seed": 2}]}
    path = tmp_path / "store" / "headline" / "k.json"
    path.write_text(json.dumps({**entry, "sha256": content_hash(entry)}))
    assert sorted(r["seed"] for r in headline_records(tmp_path)) == [0, 2]
    path.write_text(json.dumps({**entry, "records": [{**run, "value": 0.99}], "sha256": content_hash(entry)}))
    with pytest.raises(DamagedRecord, match="sha256"):  # an edited record is never read
        headline_records(tmp_path)


def test_a_decided_recommendation_renders_in_readme_and_notebook(claims):
    row = {
        "task": "topic",
        "k": 8,
        "decided": True,
        "best_on_validation": "full_finetune",
        "chosen": "frozen_backbone",
        "value": 0.8765,
        "low": 0.86,
        "high": 0.89,
        "train_seconds": 0.41,
        "best_train_seconds": 30.0,
        "seeds": 10,
        "n_test": 7600,
        "difference": {"mean": -0.004, "low": -0.01, "high": 0.002, "verdict": "tie"},
    }
    decided = {
        **claims,
        "freeze_recommendation": {**claims["freeze_recommendation"], "value": [printable_row(row, "test")]},
        "freeze_recommendation_decided": {**claims["freeze_recommendation_decided"], "value": 1},
    }
    out = render(decided)
    assert (
        "| topic | 8 | frozen backbone, linear head | freeze the backbone and train a linear head "
        "| 87.6% (95% CI 86.0–89.0) | 0.4 s | full fine-tuning |" in out["README.md"]
    )
    assert "An undecided cell" not in out["README.md"]
    twin = out["notebooks/src/03_freezing_strategies.py"].replace("# ", "")
    assert (
        "| topic | 8 | frozen backbone, linear head | 87.6% (95% CI 86.0–89.0) | full fine-tuning |"
        in twin
    )


def test_answer_three_states_the_recommendation_once_every_cell_is_decided(claims):
    """The README's answer 3 leads with the rule's output by data size when all four cells are
    decided, and keeps its describing sentence while any cell is open."""
    def row(task, k, chosen):
        return {"task": task, "k": k, "decided": True, "best_on_validation": "lp_ft", "chosen": chosen,
                "value": 0.8, "low": 0.79, "high": 0.81, "train_seconds": 1.0, "best_train_seconds": 30.0,
                "seeds": 10, "n_test": 7600, "difference": {"mean": -0.004, "low": -0.01, "high": 0.002,
                                                            "verdict": "tie"}}
    rows = [printable_row(row(task, k, chosen), "test") for task, k, chosen in
            (("topic", 8, "label_prior"), ("topic", 64, "lp_ft"), ("sentiment", 8, "label_prior"),
             ("sentiment", 64, "lp_ft"))]
    decided = {**claims, "freeze_recommendation": {**claims["freeze_recommendation"], "value": rows},
               "freeze_recommendation_decided": {**claims["freeze_recommendation_decided"], "value": 4}}
    answers = render(decided)["README.md"].split("<!-- answers:start -->")[1].split("<!-- answers:end -->")[0]
    flat = " ".join(answers.split())
    assert "one rule picks the cheapest strategy not behind" in flat
    assert "With 64, on topic, train the head, then the whole network;" in flat
    assert "that pick ties linear probe, then full fine-tuning (LP-FT), the best on validation (-0.4 points" in flat
    small = rows[::2] + [{"task": task, "k": 64, "decided": False, "runs": 30, "runs_needed": 80}
                         for task in ("topic", "sentiment")]
    half = {**claims, "freeze_recommendation": {**claims["freeze_recommendation"], "value": small},
            "freeze_recommendation_decided": {**claims["freeze_recommendation_decided"], "value": 2}}
    answers = render(half)["README.md"].split("<!-- answers:start -->")[1].split("<!-- answers:end -->")[0]
    flat = " ".join(answers.split())
    assert "one rule picks the cheapest strategy" not in flat and "Both picks are made on validation" in flat
    assert "on topic, freeze the whole network (80.0%, 95% CI 79.0–81.0)" in flat
    assert "the ten-seed grid is incomplete" in flat


def test_answer_four_reads_the_full_test_grid_once_every_run_has_landed(claims):
    """Answer 4 states the ten-seed, full-test contrast when notebook 04's headline grid is
    complete, and keeps the test-subset reading (and says what would narrow it) before."""
    def diff(mean, low, high, verdict):
        return {**claims["loop_headline_chosen_vs_single_topic"], "value": mean, "low": low,
                "high": high, "verdict": verdict, "seeds": 10}
    needed = claims["loop_headline_runs_needed"]
    def outcome(value):
        return {**claims["loop_headline_outcome"], "value": value}
    done = {**claims, "loop_headline_runs_done": {**needed}, "loop_headline_outcome": outcome("tie"),
            "loop_headline_chosen_vs_base_topic": diff(0.002, -0.003, 0.007, "tie"),
            "loop_headline_chosen_vs_base_sentiment": diff(0.001, -0.004, 0.006, "tie"),
            "loop_headline_chosen_vs_single_topic": diff(-0.012, -0.02, -0.004, "behind"),
            "loop_headline_chosen_vs_single_sentiment": diff(0.003, -0.005, 0.011, "tie")}
    answers = render(done)["README.md"].split("<!-- answers:start -->")[1].split("<!-- answers:end -->")[0]
    flat = " ".join(answers.split())
    assert "It does not measurably matter here" in flat
    assert "On the full test sets at 10 seeds" in flat
    assert "it loses on topic (-1.2 points, 95% CI -2.0 to -0.4)" in flat
    assert "that narrows them holds" not in flat
    assert len(answers.split()) <= 650, f"{len(answers.split())} words once the grid has landed"
    separated = {**done, "loop_headline_chosen_vs_base_topic": diff(0.01, 0.004, 0.016, "ahead"),
                 "loop_headline_outcome": outcome("separated")}
    readme = render(separated)["README.md"]
    flat = " ".join(readme.split())
    assert "The choice is measurable on the full test sets" in flat
    assert "It does not measurably matter here" not in flat
    answers = readme.split("<!-- answers:start -->")[1].split("<!-- answers:end -->")[0]
    assert len(answers.split()) <= 650, f"{len(answers.split())} words once the grid has landed"
    traded = {**done, "loop_headline_outcome": outcome("trade"),
              "loop_headline_chosen_vs_base_topic": diff(-0.02, -0.025, -0.015, "behind"),
              "loop_headline_chosen_vs_base_sentiment": diff(0.02, 0.005, 0.035, "ahead"),
              "loop_headline_validation_chosen_vs_base": diff(0.016, -0.001, 0.033, "tie")}
    readme = render(traded)["README.md"]
    answers = readme.split("<!-- answers:start -->")[1].split("<!-- answers:end -->")[0]
    flat = " ".join(answers.split())
    assert "It trades one task for the other" in flat and "The choice is measurable" not in flat
    assert "behind proportional task sampling with equal loss weights on topic (-2.0 points" in flat
    assert "does not separate them (+1.6 points, 95% CI -0.1 to +3.3)" in flat
    assert "it trades one task for the other" in " ".join(readme.split())  # the summary table's row
    assert len(answers.split()) <= 650, f"{len(answers.split())} words once the grid has landed"
    if claims["loop_headline_runs_done"]["value"] < needed["value"]:
        assert "that narrows them holds" in " ".join(render(claims)["README.md"].split())


def test_the_loop_outcome_follows_the_verdicts_against_the_base(claims):
    """``loop_headline_outcome``, which the README, notebook 04 and the report branch on, is the
    reading of the two verdicts against the base configuration once every run is in."""
    verdicts = sorted(claims[f"loop_headline_chosen_vs_base_{t}"]["verdict"] for t in ("topic", "sentiment"))
    complete = claims["loop_headline_runs_done"]["value"] == claims["loop_headline_runs_needed"]["value"]
    expected = ("pending" if not complete else "tie" if verdicts == ["tie", "tie"]
                else "trade" if verdicts == ["ahead", "behind"] else "separated")
    assert claims["loop_headline_outcome"]["value"] == expected
