"""The package's structure as rules: the library never imports the experiments layer, no module
grows past one concept's size, and importing the package leaves the environment alone."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sentence_mtl"
LAYERS = ("experiments", "reporting")  # built on the library; the library never imports them


def _library_modules():
    return [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in LAYERS]


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the package
                module = "sentence_mtl." + module if module else "sentence_mtl"
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", _library_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_library_never_imports_the_layers_above_it(path):
    above = [name for name in _imported(path)
             if any(name == f"sentence_mtl.{layer}" or name.startswith(f"sentence_mtl.{layer}.")
                    for layer in LAYERS)]
    assert not above, f"{path.name} imports {above}: the library must not depend on {LAYERS}"


def test_modules_stay_small():
    long = {p.name: n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines (split them by concept): {long}"


def test_reporting_and_the_analysis_layer_import_no_torch():
    """README blocks and the report are rebuilt from records alone, on a machine without torch."""
    import subprocess
    import sys

    code = ("import sys; import sentence_mtl.reporting.tables, sentence_mtl.reporting.report, "
            "sentence_mtl.reporting.plots, sentence_mtl.reporting.render, sentence_mtl.reporting.figures, "
            "sentence_mtl.experiments.analysis; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing reporting loads {out.strip()}"


def _sets_environment(node) -> bool:
    """``os.environ[...] = ``, ``os.environ.setdefault/update/pop(...)``, ``os.putenv(...)``."""
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Subscript) and ast.unparse(t.value) == "os.environ" for t in targets)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner, name = ast.unparse(node.func.value), node.func.attr
        return (owner == "os.environ" and name in ("setdefault", "update", "pop", "clear")) or \
            (owner == "os" and name in ("putenv", "unsetenv"))
    return False


def test_importing_the_package_leaves_the_environment_alone():
    """Only the command-line entry point may set variables (HF_HUB_OFFLINE for the packaged
    backbone); a library import must not change the environment of the program that imports it."""
    offenders = [f"{p.relative_to(PACKAGE)}:{node.lineno}" for p in PACKAGE.rglob("*.py") if p.name != "cli.py"
                 for node in ast.walk(ast.parse(p.read_text())) if _sets_environment(node)]
    assert not offenders, f"the environment is changed at {offenders}"


def _graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its body)."""
    modules = {".".join(("sentence_mtl", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([node.module] if node.module else []))
                imported |= {base, *(f"{base}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.ImportFrom):
                imported |= {node.module or "", *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        graph[name] = {m for m in imported if m in modules and m != name and not name.startswith(m + ".")}
    return graph


@pytest.mark.parametrize("layer", ["sentence_mtl.reporting", "sentence_mtl.experiments"])
def test_no_import_cycle_in_the_layers(layer):
    graph = _graph()
    nodes = [n for n in graph if n.startswith(layer + ".")]

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and not seen.add(nxt) and reaches(nxt, goal, seen)):
                return True
        return False
    cycles = [n for n in nodes if reaches(n, n, set())]
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_the_experiments_layer_never_imports_reporting():
    graph = _graph()
    bad = {n: sorted(m for m in deps if m.startswith("sentence_mtl.reporting"))
           for n, deps in graph.items() if n.startswith("sentence_mtl.experiments")}
    assert not {n: d for n, d in bad.items() if d}, "experiments must not import reporting"
