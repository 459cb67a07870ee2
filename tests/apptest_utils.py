"""Shared AppTest helpers for the page tests (imported by every tests/test_app_*.py).

    at = make_app()                      # AppTest of app.py with a generous timeout
    at.run(); open_page(at, "views/score_field.py")
    inject_model(at, tiny_result(), "tiny")  # a trained model, active, without the Train page
    specs = chart_specs(at)              # figure JSONs of every st.plotly_chart on the page

Facts this relies on (see /work/shared/TOOLCHAIN.md): AppTest paths resolve against the test file,
so app.py is given as an absolute path; `import torch` makes the default 3 s timeout far too short;
`switch_page` needs one `run()` first; session state survives page switches.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP_PATH = ROOT / "app.py"
TIMEOUT = 120  # seconds per run: torch import + first figure build on a 2-core CPU


def make_app(timeout: float = TIMEOUT) -> AppTest:
    """An AppTest of the whole multipage app (not yet run); app.py runs on every page."""
    return AppTest.from_file(str(APP_PATH), default_timeout=timeout)


def open_page(at: AppTest, page: str) -> AppTest:
    """Run once if needed, then switch to `page` ("views/<file>.py") and run it."""
    if "distribution" not in at.session_state:
        at.run()
    return at.switch_page(page).run()


def inject_model(at: AppTest, result: Any, name: str = "test model", activate: bool = True):
    """Put a TrainResult into the session's models (as the Train page would) and activate it.

    Call before or after `at.run()`; the next run sees it.
    """
    models = at.session_state["models"] if "models" in at.session_state else OrderedDict()
    models = OrderedDict(models)
    models[name] = result
    at.session_state["models"] = models
    if activate:
        at.session_state["active_model"] = name
    return at


@functools.cache
def tiny_result(
    distribution: str = "eight_gaussians",
    process: str = "vp_linear",
    kind: str = "score",
    steps: int = 300,
    seed: int = 0,
):
    """A quickly trained model (cached for the whole test session; a few hundred steps)."""
    from scoreviz import models, training

    cfg = training.TrainConfig(
        distribution=distribution,
        process=process,
        model=models.ModelConfig(kind=kind, width=64, depth=2),
        steps=steps,
        seed=seed,
    )
    return training.train(cfg)


def chart_specs(at: AppTest) -> list[dict]:
    """The figure JSON (data, layout, frames) of every st.plotly_chart currently rendered."""
    return [json.loads(node.proto.spec) for node in at.get("plotly_chart")]


def decode(values: Any) -> np.ndarray:
    """A trace array from figure JSON: a plain list, or plotly's {"dtype", "bdata"} base64 form."""
    if isinstance(values, dict) and "bdata" in values:
        arr = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        shape = values.get("shape")
        if shape:
            dims = [int(s) for s in str(shape).split(",")]
            arr = arr.reshape(dims)
        return arr
    return np.asarray(values, dtype=float)


def assert_no_exception(at: AppTest) -> None:
    """No uncaught exception and no generic 'unexpected problem' error box."""
    assert not at.exception, [e.value for e in at.exception]
    bad = [e.value for e in at.error if "unexpected problem" in e.value]
    assert not bad, bad


def run_until(at: AppTest, done, timeout: float = 60.0, pause: float = 0.2) -> AppTest:
    """Rerun the app until `done(at)` is true (for background work such as training)."""
    deadline = time.monotonic() + timeout
    at.run()
    while not done(at):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached while rerunning the app")
        time.sleep(pause)
        at.run()
    return at
