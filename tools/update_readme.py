"""Render the README and docs/ from templates/ and results/claims.json (``make docs`` without the report).

The words are in ``templates/``; the numbers come from ``results/`` through
``sentence_mtl.reporting.claims``. See ``sentence_mtl.reporting.render``.
"""

from sentence_mtl.reporting.render import main

raise SystemExit(main(["--no-report"]))
