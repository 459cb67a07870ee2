"""The built wheel is the whole package: it holds every module of scoreviz/ (figures, ui and any
package added later, found by pyproject's package discovery), and installed on its own, away from
the checkout, it runs the README's notebook cell.

The build copies only what a build reads (pyproject.toml, README.md, requirements.txt, scoreviz/)
to a temporary folder, so it leaves no build/ or egg-info in the checkout. No network: the build
uses the venv's setuptools, and the installed wheel runs on the venv's torch, numpy and plotly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_layers import CHECK, ROOT, notebook_cell

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **env}
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "scoreviz", src / "scoreviz", ignore=ignore)
    args = ["--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(src)]
    build = _run([sys.executable, "-m", "pip", "wheel", "-q", *args], cwd=tmp)
    assert build.returncode == 0, build.stderr[-3000:]
    (found,) = (tmp / "dist").glob("scoreviz-*.whl")
    return found


def test_the_wheel_holds_every_module_of_the_source_tree(wheel):
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "scoreviz").rglob("*.py")}
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {n for n in names if n.endswith(".py")}
    assert {"scoreviz/figures/sampling.py", "scoreviz/ui/models.py"} <= sources
    assert packaged == sources, (sorted(sources - packaged), sorted(packaged - sources))


def test_the_wheel_declares_the_runtime_requirements(wheel):
    (meta,) = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA")]
    text = zipfile.ZipFile(wheel).read(meta).decode()
    required = {
        line.split(":", 1)[1].strip() for line in text.splitlines() if "Requires-Dist" in line
    }
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    wanted = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert required == wanted


def test_the_installed_wheel_runs_the_readme_notebook_cell_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    install = _run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        + ["--target", str(target), str(wheel)],
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    where = "\nimport scoreviz\nprint(json.dumps({'scoreviz': scoreviz.__file__}))\n"
    code = notebook_cell() + CHECK + where
    run = _run([sys.executable, "-c", code], cwd=tmp_path, PYTHONPATH=str(target))
    assert run.returncode == 0, run.stderr[-3000:]
    *_, result, location = run.stdout.strip().splitlines()
    assert Path(json.loads(location)["scoreviz"]).is_relative_to(target)  # not the checkout
    out = json.loads(result)
    assert out["streamlit"] is False and out["ui"] is False
    assert out["labels"] == ["learned score", "exact score"]
    assert out["n_frames"] == [50, 50] and out["fig_frames"] == 50
