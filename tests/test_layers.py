"""The layering: only app.py, views/ and scoreviz/ui import `scoreviz.ui`; the rest of scoreviz
and benchmarks/bench.py import no Streamlit; the modules of scoreviz import each other without a
cycle, imports inside functions counted (and those are few, each for a start-up cost); and the
README's notebook cell draws the Sampling figure from the core alone (run in a fresh interpreter,
read out of the README: no drift)."""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", "tests", ".git", "node_modules"}


def _sources() -> list[Path]:
    """Every .py of the project (tests and hidden or virtual-environment folders left out)."""
    out = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if not any(p in SKIP or p.startswith(".") for p in parts[:-1]):
            out.append(path)
    return out


def _imported(path: Path) -> set[str]:
    """Dotted names of the modules a file imports (`from a import b` gives a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _imports(path: Path, package: str) -> bool:
    return any(n == package or n.startswith(package + ".") for n in _imported(path))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_modules() -> dict[str, Path]:
    """Every module of the scoreviz package by its dotted name."""
    return {_module_name(p): p for p in (ROOT / "scoreviz").rglob("*.py")}


def _edges(path: Path, modules: dict[str, Path]) -> list[tuple[str, bool]]:
    """(module of scoreviz imported, whether the import sits inside a function) for every import
    statement of the file, anywhere in it (a `TYPE_CHECKING` block is no import at run time).
    `from scoreviz.x import y` names the module scoreviz.x.y if that is one, else scoreviz.x."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                for a in child.names:
                    full = f"{child.module}.{a.name}"
                    out.append((full if full in modules else child.module, in_function))
            else:
                visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return [(m, f) for m, f in out if m in modules]


def import_graph() -> dict[str, set[str]]:
    """scoreviz module -> the scoreviz modules it imports (at the top or inside functions)."""
    modules = _package_modules()
    return {m: {t for t, _ in _edges(p, modules) if t != m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan): every cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_function_level_import_is_counted(tmp_path):
    modules = {"scoreviz.x": ROOT, "scoreviz.y": ROOT}
    path = tmp_path / "probe.py"
    path.write_text("import scoreviz.x\ndef f():\n    from scoreviz.y import g\n")
    assert _edges(path, modules) == [("scoreviz.x", False), ("scoreviz.y", True)]
    assert _function_imports(path) == 1


def test_scoreviz_imports_have_no_cycle_counting_imports_inside_functions():
    graph = import_graph()
    assert "scoreviz.ui.cache" in graph["scoreviz.ui.charts"]
    assert cycles(graph) == []


def _function_imports(path: Path) -> int:
    """Import statements inside functions (of any module, scoreviz's or not)."""
    functions = [
        n
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    nested = {id(f2) for f in functions for f2 in ast.walk(f) if f2 is not f}
    return sum(
        isinstance(n, ast.Import | ast.ImportFrom)
        for f in functions
        if id(f) not in nested
        for n in ast.walk(f)
    )


# Imports inside functions in scoreviz/ui: only where one breaks a measured start-up cost (none
# does today; there were 57 before the UI layer was re-cut by ownership).
UI_FUNCTION_IMPORTS_MAX = 0


def test_scoreviz_ui_imports_at_the_top():
    ui = sorted((ROOT / "scoreviz" / "ui").glob("*.py"))
    inside = {_rel(p): n for p in ui if (n := _function_imports(p))}
    assert sum(inside.values()) <= UI_FUNCTION_IMPORTS_MAX, inside


# The rest of scoreviz: each import inside a function names its reason (a dependency that is
# optional or dev-only). Anything else goes at the top, where a cycle would show at once.
CORE_FUNCTION_IMPORTS = {
    "scoreviz/exports.py": 1,  # kaleido: optional, PNG/GIF only, starts a browser
    "scoreviz/metrics.py": 1,  # scipy: ~1 s to import, for exact W2 only (the steps chart)
}


def test_scoreviz_core_imports_at_the_top_but_for_optional_dependencies():
    core = [p for p in sorted((ROOT / "scoreviz").rglob("*.py")) if "ui" not in p.parts]
    inside = {_rel(p): n for p in core if (n := _function_imports(p))}
    assert inside == CORE_FUNCTION_IMPORTS


def test_the_sources_are_found():
    rels = {_rel(p) for p in _sources()}
    expected = {
        "app.py",
        "scoreviz/pipelines/sampling.py",
        "benchmarks/bench.py",
        "views/sampling.py",
    }
    assert expected <= rels


def test_only_app_views_and_ui_import_scoreviz_ui():
    allowed = ("app.py", "views/", "scoreviz/ui/")
    users = {_rel(p) for p in _sources() if _imports(p, "scoreviz.ui")}
    assert users, "the app must import scoreviz.ui somewhere"
    assert {u for u in users if not u.startswith(allowed)} == set()
    assert "app.py" in users


def test_core_and_the_benchmark_import_no_streamlit():
    """upload_pages.py and loadgen.py time the app's pages through Streamlit on purpose."""
    core = [p for p in _sources() if _rel(p).startswith("scoreviz/")]
    core = [p for p in core if not _rel(p).startswith("scoreviz/ui/")]
    core.append(ROOT / "benchmarks" / "bench.py")
    assert [_rel(p) for p in core if _imports(p, "streamlit")] == []


def notebook_cell() -> str:
    """The first Python block of the README's "Use it from a notebook" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it from a notebook", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


CHECK = """
import json, sys
rows = view.rows
last = fig.frames[-1].data
print(json.dumps({
    "streamlit": "streamlit" in sys.modules,
    "ui": any(m.startswith("scoreviz.ui") for m in sys.modules),
    "labels": [r.label for r in rows],
    "n_frames": [len(r.frames.times) for r in rows],
    "fig_frames": len(fig.frames),
    "names": [t.name for t in fig.data],
    "particles": [len(r.frames.xs[-1]) for r in rows],
    "last_xt_learned": [list(map(float, last[1].x)), list(map(float, rows[0].frames.xs[-1][:, 0]))],
    "energy": [r.report.get("energy_distance") for r in rows],
    "steps_curves": [c.kind for c in steps.curves],
    "steps_traces": len(steps_fig.data),
    "lik_panels": len(lik_fig.data),
    "lik_nll": [lik.learned.nll, lik.truth.nll_exact_ode],
}))
"""


@pytest.mark.slow
def test_the_readme_notebook_cell_draws_the_sampling_figure_without_streamlit():
    code = notebook_cell() + CHECK
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["streamlit"] is False and out["ui"] is False
    assert out["labels"] == ["learned score", "exact score"]
    # the 50 recorded frames (from the starting noise to t_min): every row has them, the figure too
    assert out["n_frames"] == [50, 50] and out["fig_frames"] == 50
    assert out["particles"] == [500, 500]
    assert "x_t, learned score" in out["names"] and "x_t, exact score" in out["names"]
    assert "x̂₀, exact score" in out["names"]
    fig_x, row_x = out["last_xt_learned"]  # the last frame's learned x_t are the row's
    assert len(fig_x) == 500
    assert fig_x == pytest.approx(row_x, abs=1e-5)
    assert all(e is not None and e >= 0 for e in out["energy"])
    # the quality-vs-steps chart and the Likelihood page, drawn from the same problem
    assert out["steps_curves"] == ["learned", "exact"] and out["steps_traces"] >= 5
    assert out["lik_panels"] == 3 and all(math.isfinite(v) for v in out["lik_nll"])
