"""Shared pytest setup: the test tiers (markers set from what each test reaches, `tests/tiers.py`)
and a check that figure JSON holds only finite numbers.

Torch runs on one thread, as in the app: importing scoreviz sets that policy (`scoreviz.threads`).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import scoreviz  # noqa: F401  (first of the package: its thread policy precedes torch's import)
from tests import tiers
from tests.apptest_utils import decode

ARRAY_KEYS = ("x", "y", "z", "u", "v")


def pytest_sessionstart(session):
    tiers.install_guards()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with tiers.guarding(item):
        return (yield)


def pytest_collection_modifyitems(config, items):
    """Mark each test with the costly things it reaches, and `quick` if it reaches none."""
    for item in items:
        for name in sorted(tiers.markers_for(item)):
            item.add_marker(name)
        if not any(item.get_closest_marker(name) for name in tiers.NOT_QUICK):
            item.add_marker("quick")


def figure_spec(fig) -> dict:
    """A go.Figure as the JSON st.plotly_chart sends (numpy arrays base64 `{"dtype", "bdata"}`)."""
    import plotly.io as pio

    return json.loads(pio.to_json(fig, validate=False))


def _numeric(values) -> np.ndarray | None:
    try:
        arr = decode(values)
    except (TypeError, ValueError):
        return None  # categorical (strings) or ragged: nothing numeric to check
    return arr.astype(float) if arr.dtype.kind in "fiub" else None


def _draws_lines(trace: dict, base: dict) -> bool:
    kind = trace.get("type", base.get("type", "scatter"))
    mode = trace.get("mode", base.get("mode", "lines"))  # Plotly's scatter default has lines
    return kind in ("scatter", "scattergl") and "lines" in mode


def _trace_problems(trace: dict, base: dict, where: str) -> list[str]:
    """Non-finite numbers in x/y/z/u/v. Allowed: NaN at the same index of x and y of a line trace
    (Plotly's line break, e.g. between arrows; plain lists send NaN as null), and a legend
    entry's stand-in: x = y = [null], one point that is not drawn (`dots.cloud_image`; a trace
    without points gets no legend entry)."""
    if trace.get("x") == [None] and trace.get("y") == [None] and not trace.get("z"):
        return []
    arrays = {k: _numeric(trace[k]) for k in ARRAY_KEYS if k in trace}
    arrays = {k: a for k, a in arrays.items() if a is not None}
    gaps = None
    if _draws_lines(trace, base) and "x" in arrays and "y" in arrays:
        x, y = arrays["x"].ravel(), arrays["y"].ravel()
        if len(x) == len(y):
            gaps = np.isnan(x) & np.isnan(y)
    out = []
    for key, arr in arrays.items():
        flat = arr.ravel()
        bad = ~np.isfinite(flat)
        if gaps is not None and key in ("x", "y"):
            bad &= ~gaps
        if bad.any():
            sample = flat[bad][:3].tolist()
            out.append(f"{where}.{key} ({trace.get('name', '?')}): {bad.sum()} non-finite {sample}")
    return out


def _layout_problems(obj, where: str) -> list[str]:
    if isinstance(obj, float) and not math.isfinite(obj):
        return [f"{where} = {obj}"]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _layout_problems(v, f"{where}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _layout_problems(v, f"{where}[{i}]")]
    return []


def nonfinite_problems(spec: dict) -> list[str]:
    """Every non-finite number in a figure JSON's data, frames and layout (empty list: clean)."""
    data = spec.get("data") or []
    out = [p for i, tr in enumerate(data) for p in _trace_problems(tr, tr, f"data[{i}]")]
    for f, frame in enumerate(spec.get("frames") or []):
        fdata = frame.get("data") or []
        idx = frame.get("traces") or range(len(fdata))
        for j, tr in zip(idx, fdata):
            base = data[j] if j < len(data) else {}
            out += _trace_problems(tr, base, f"frames[{f}].data[{j}]")
    return out + _layout_problems(spec.get("layout") or {}, "layout")


@pytest.fixture
def assert_finite_figure():
    """assert_finite_figure(fig_or_spec, what): no NaN/inf in the figure (line breaks allowed)."""

    def check(fig, what: str = "figure") -> dict:
        spec = fig if isinstance(fig, dict) else figure_spec(fig)
        problems = nonfinite_problems(spec)
        assert not problems, f"{what}: " + "; ".join(problems[:8])
        return spec

    return check
