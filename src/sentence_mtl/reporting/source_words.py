"""How much English the package's code still holds: words in string literals outside docstrings.

Prose belongs in ``templates/``; what stays in ``src/`` is CLI help, error messages, table and
figure labels and claim sources. Counted with Python's own parser, one word per ``\\w+`` token,
so the number is the same on every machine (``docs/results.md``, "Goals and misses").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

WORD = re.compile(r"\w+")
CAP = 6300  # the project's goal for src/ once the prose lives in templates/


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}


def literal_words(package: Path) -> int:
    """Words in the string literals of every ``.py`` file under ``package``, docstrings left out."""
    total = 0
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        total += sum(len(WORD.findall(node.value)) for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip)
    return total
