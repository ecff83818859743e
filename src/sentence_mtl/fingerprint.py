"""A notebook's code fingerprint: the hash of what it runs to produce its numbers.

``tools/reproduce.py`` writes it into each executed notebook's metadata, and
``tests/test_notebook_outputs.py`` fails when a committed notebook's outputs came from other code.
What counts is the notebook's own code cells and every module of this package they import,
followed transitively through the imports of those modules. Presentation is left out:
``sentence_mtl.reporting`` (figures, claims, prose) is re-drawn from the records by ``make
figures`` and ``make docs``, so editing it, a template, the service or the CLI re-executes nothing
unless a notebook's computation imports it.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
NAME = "sentence_mtl"
PRESENTATION = ("sentence_mtl.reporting",)  # re-drawn from records, never part of a computation


def code_cells(notebook: Path) -> list[str]:
    """The source of each code cell of an ``.ipynb``."""
    cells = json.loads(notebook.read_text())["cells"]
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "code"
    ]


def _imports(source: str, package: str) -> set[str]:
    """Dotted names a source imports (``from a import b`` gives ``a`` and ``a.b``); relative
    imports resolved against ``package``; IPython magics and shell lines skipped."""
    names = set()
    python = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    for node in ast.walk(ast.parse(python)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _module_file(name: str, root: Path) -> Path | None:
    """The file of a module of this package (``None`` for anything else, such as a function name)."""
    parts = name.split(".")[1:]
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if parts and candidate.is_file():
            return candidate
    return root / "__init__.py" if not parts else None


def modules_run(sources: list[str], root: Path = PACKAGE) -> list[str]:
    """The package's modules the sources import, transitively, presentation excluded; sorted."""
    seen: dict[str, Path] = {}
    todo = [n for s in sources for n in _imports(s, NAME)]
    while todo:
        name = todo.pop()
        if not (name == NAME or name.startswith(NAME + ".")) or name.startswith(PRESENTATION):
            continue
        path = _module_file(name, root)
        if path is None:
            continue
        module = NAME + "." + ".".join(path.relative_to(root).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        if module in seen:
            continue
        seen[module] = path
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        todo += parents + sorted(_imports(path.read_text(), package))
    return sorted(seen)


def code_fingerprint(sources: list[str], root: Path = PACKAGE) -> str:
    """sha256 over the code cells and each module :func:`modules_run` finds (name and bytes);
    first 16 hex digits."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.encode() + b"\0")
    for module in modules_run(sources, root):
        path = _module_file(module, root)
        digest.update(module.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def notebook_fingerprint(notebook: Path, root: Path = PACKAGE) -> str:
    """The fingerprint of an ``.ipynb``'s code cells and what they import."""
    return code_fingerprint(code_cells(notebook), root)
