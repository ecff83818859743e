"""``make docs``: claims from ``results/``, then README, ``docs/`` and report.pdf from templates.

The words live in ``templates/`` (Jinja2 Markdown, written by hand); every number is a slot naming
a claim of ``results/claims.json`` and printed by one filter of ``filters``. No notebook is
executed. ``tests/test_templates.py`` fails when a rendered file differs from a fresh render.

    python -m sentence_mtl.reporting.render [--check] [--no-report]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jinja2

from ..config import REPO_ROOT
from ..io import atomic_path
from . import claims as claims_module
from .filters import FILTERS
from .names import names
from .tables import tables

TEMPLATES = REPO_ROOT / "templates"
TARGETS = {
    "README.md": "README.md.j2",
    "docs/results.md": "docs/results.md.j2",
    "docs/service.md": "docs/service.md.j2",
    "docs/usage.md": "docs/usage.md.j2",
}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    words = names()

    def word(value):
        """A strategy or configuration id (or a name claim) as words."""
        key = value["value"] if isinstance(value, dict) else value
        if key not in words:
            raise KeyError(f"no readable name for {key!r}: add it to templates/names.json")
        return words[key]

    env.filters["word"] = word
    return env


def render(claims: dict, results: Path = claims_module.RESULTS) -> dict[str, str]:
    """Each target path (relative to the repository) and its text: the README, ``docs/`` and each
    notebook's conclusion cell (in its twin, and in the ``.ipynb`` once that holds the cell)."""
    env = environment()
    context = {"c": claims, "tables": tables(results)}
    out = {target: env.get_template(template).render(**context) for target, template in TARGETS.items()}
    for template in sorted((TEMPLATES / "notebooks").glob("*.md.j2")):
        stem = template.name.removesuffix(".md.j2")
        text = env.get_template(f"notebooks/{template.name}").render(**context).strip()
        twin = f"notebooks/src/{stem}.py"
        out[twin] = conclusion_in_twin((REPO_ROOT / twin).read_text(), text)
        notebook = f"notebooks/{stem}.ipynb"
        if CONCLUSION[0] in (source := (REPO_ROOT / notebook).read_text()):
            out[notebook] = conclusion_in_notebook(source, text)
    return out


CONCLUSION = ("<!-- conclusion:start -->", "<!-- conclusion:end -->")


def conclusion_in_twin(source: str, text: str) -> str:
    """The jupytext twin with its conclusion cell (``# <!-- conclusion:start -->`` to ``end``) replaced."""
    start, end = source.index("# " + CONCLUSION[0]), source.index("# " + CONCLUSION[1])
    body = "\n".join("# " + line if line else "#" for line in text.splitlines())
    return source[:start] + f"# {CONCLUSION[0]}\n{body}\n" + source[end:]


def conclusion_in_notebook(source: str, text: str) -> str:
    """The ``.ipynb`` with its conclusion markdown cell replaced; outputs and code untouched."""
    notebook = json.loads(source)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown" and CONCLUSION[0] in "".join(cell["source"]):
            lines = f"{CONCLUSION[0]}\n{text}\n{CONCLUSION[1]}".splitlines(keepends=True)
            cell["source"] = lines
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="fail when a committed file differs from a fresh render"
    )
    parser.add_argument("--no-report", action="store_true", help="leave report.pdf alone")
    args = parser.parse_args(argv)
    claims = claims_module.build() if args.check else claims_module.write()
    stale = []
    for target, text in render(claims).items():
        path = REPO_ROOT / target
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(target)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}: run `make docs`", file=sys.stderr)
        return 1
    if not args.check and not args.no_report:
        from .report import main as build_report

        build_report([])
    print(
        "checked"
        if args.check
        else "rendered README.md, docs/, the notebooks' conclusions"
        + ("" if args.no_report else " and report.pdf")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
