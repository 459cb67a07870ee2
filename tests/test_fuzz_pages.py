"""Fuzz every page with random widget values (Hypothesis, derandomised) through AppTest.

For each page, with and without a tiny trained model, an example opens a fresh session on the
page and then, for one to three rounds, enumerates the widgets on screen (sliders, select
sliders, number inputs, select boxes, radios, checkboxes, toggles, multiselects, the shared
sidebar included), gives some of them a new value inside the widget's own range or options (the
ends with high probability), runs the app and checks:

- no uncaught exception, no generic "unexpected problem" box, no traceback text anywhere;
- every Plotly chart's JSON holds only finite numbers in x/y/z/u/v, frames included (NaN line
  breaks between arrows excepted: conftest's `assert_finite_figure`).

Rounds re-read the tree, so widgets that appear after a change (a sampler's own sliders) get
fuzzed too. Buttons are not pressed, except the Train form's submit with its smallest step
count and a small network (a background training per example must stay well under a second).

Cost guard: the Sampling page's worst corner (predictor-corrector, 500 steps, 10 corrector
steps, 2000 particles, the 376-component "word" mixture) takes minutes on one core, so the
particle count is lowered until one run stays near 0.5 s (`_cap_sampling_cost`): steps,
corrector steps and particles each still reach their ends, just not all together.
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from scoreviz.distributions import get_distribution
from tests.apptest_utils import (
    assert_no_exception,
    chart_specs,
    inject_model,
    make_app,
    open_page,
    run_until,
    tiny_result,
)

pytestmark = pytest.mark.slow

# page file -> examples per model setting (the whole file stays near a minute on 2 cores)
PAGES = {
    "views/home.py": 4,
    "views/forward.py": 8,
    "views/train.py": 8,
    "views/score_field.py": 10,
    "views/dae.py": 8,
    "views/loss.py": 8,
    "views/sampling.py": 10,
    "views/likelihood.py": 4,
    "views/guidance.py": 4,
}
TRACEBACK_MARKS = ("Traceback", 'File "')
SAMPLING_BUDGET = 1.5e7  # particle-steps x (mixture components + 8): ~0.5 s on one core
TRAIN_CAPS = {"tf_steps": 50, "tf_width": 64, "tf_batch": 256, "tf_depth": 3}

FUZZ = settings(
    max_examples=1,  # replaced per page below
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failing AppTest example is noted
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ----------------------------------------------------------------------------- the widgets
WIDGET_KINDS = (
    "slider",
    "select_slider",
    "number_input",
    "selectbox",
    "radio",
    "checkbox",
    "toggle",
    "multiselect",
)


def widgets(at) -> list:
    """Every fuzzable widget now on screen (sidebar included), in tree order per kind."""
    out = []
    for kind in WIDGET_KINDS:
        out += [w for w in getattr(at, kind) if not w.disabled]
    return out


def raw_options(at, w) -> list:
    """The option *values* of a select box / radio / select slider / multiselect.

    The element tree only has the formatted labels; the values live in the widget's
    deserializer (registered in the last run), which `set_value` needs.
    """
    meta = at.session_state._state._state.get_widget_metadata(w.id)
    serde = getattr(meta.deserializer, "__self__", None) if meta is not None else None
    if serde is None or not hasattr(serde, "options"):
        raise AssertionError(f"cannot read the options of {w.type} {w.key or w.label!r}")
    return list(serde.options)


def _snap(v: float, lo: float, step: float) -> float:
    return round(lo + round((v - lo) / step) * step, 10)


def _number(data, lo, hi, step, integer: bool, label: str):
    """A value in [lo, hi] on the widget's step grid; each end with probability 1/3."""
    if integer:
        lo, hi = math.ceil(lo), math.floor(hi)  # the proto stores bounds as floats
    pick = data.draw(st.sampled_from(["min", "max", "any"]), label=f"{label}: where")
    if pick != "any" or lo == hi:
        return lo if pick == "min" else hi
    if integer:
        return data.draw(st.integers(lo, hi), label=label)
    v = data.draw(st.floats(float(lo), float(hi), allow_nan=False), label=label)
    return min(max(_snap(v, lo, step or 1e-9), lo), hi)


def _index(data, n: int, label: str) -> int:
    pick = data.draw(st.sampled_from(["first", "last", "any"]), label=f"{label}: where")
    if pick == "any":
        return data.draw(st.sampled_from(range(n)), label=label)
    return 0 if pick == "first" else n - 1


def draw_value(data, at, w):
    """A new value for widget w, inside its own min/max or options."""
    label = f"{w.type} {w.key or w.label!r}"
    integer = isinstance(w.value, int) and not isinstance(w.value, bool)
    if w.type == "slider":
        return _number(data, w.min, w.max, w.step, integer, label)
    if w.type == "number_input":
        lo = w.min if w.min is not None else -1e6
        hi = w.max if w.max is not None else 1e6
        return _number(data, lo, hi, w.step, integer, label)
    if w.type in ("checkbox", "toggle"):
        return data.draw(st.booleans(), label=label)
    opts = raw_options(at, w)
    if w.type == "multiselect":
        picks = data.draw(st.sets(st.integers(0, len(opts) - 1)), label=label)
        return [opts[i] for i in sorted(picks)]
    if w.type == "select_slider" and isinstance(w.value, (tuple, list)):
        i, j = _index(data, len(opts), label + " lo"), _index(data, len(opts), label + " hi")
        return (opts[min(i, j)], opts[max(i, j)])
    if w.type == "select_slider":
        return opts[_index(data, len(opts), label)]
    return data.draw(st.sampled_from(opts), label=label)  # categories: no "ends" to favour


# ----------------------------------------------------------------------------- cost guards
def _value(at, values: dict, key: str, default=None):
    if key in values:
        return values[key]
    try:
        return next(w.value for w in widgets(at) if w.key == key)
    except StopIteration:
        return default


def _cap_sampling_cost(at, values: dict) -> None:
    """Lower the particle count until steps x score evaluations x mixture size fits the budget."""
    if _value(at, values, "sampler_particles") is None:
        return
    name = _value(at, values, "sampler", "reverse_sde")
    inner = _value(at, values, "sampler_inner", 1)
    evals = {"pc": 1 + inner, "pf_ode_heun": 2}.get(name, 1)
    dist = _value(at, values, "distribution", "eight_gaussians")
    k = 1000 if dist == "upload" else get_distribution(dist).n_components
    rows = 2 if at.session_state["active_model"] else 1
    per_particle = _value(at, values, "sampler_steps", 200) * evals * (k + 8) * rows
    cap = max(1, int(SAMPLING_BUDGET // per_particle))
    if _value(at, values, "sampler_particles") > cap:
        values["sampler_particles"] = cap


def _cap_training(at, values: dict) -> None:
    """The Train form: its fewest steps and a small network (one training < 1 s)."""
    for key, cap in TRAIN_CAPS.items():
        values[key] = min(_value(at, values, key, cap), cap)


# ----------------------------------------------------------------------------- the checks
def _texts(at) -> list[str]:
    kinds = ("error", "warning", "info", "success", "markdown", "caption", "exception", "code")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def check_page(at, where: str, finite) -> None:
    """No exception or traceback text; every chart finite (`finite`: conftest's fixture)."""
    assert_no_exception(at)
    for text in _texts(at):
        assert not any(m in text for m in TRACEBACK_MARKS), f"{where}: traceback text {text!r}"
    for i, spec in enumerate(chart_specs(at)):
        finite(spec, f"{where}, chart {i}")


def _training_collected(at) -> bool:
    job = at.session_state["training_job"] if "training_job" in at.session_state else None
    return job is None or job.collected


def fuzz_round(data, at, page: str, submit: bool, r: int, finite) -> None:
    values = {}
    shared = {w.id for kind in WIDGET_KINDS for w in getattr(at.sidebar, kind)}
    for w in widgets(at):
        if w.form_id and not submit:  # an unsubmitted form's values change nothing
            continue
        odds = 4 if w.id in shared else 2  # the page's own widgets change more often
        if data.draw(st.integers(0, odds - 1), label=f"change {w.key or w.label!r}") == 0:
            values[w.key or w.label] = draw_value(data, at, w)
    if page == "views/sampling.py":
        _cap_sampling_cost(at, values)
    if submit:
        _cap_training(at, values)
    note(f"round {r} on {page}: {values}")
    by_id = {w.key or w.label: w for w in widgets(at)}
    for key, v in values.items():
        by_id[key].set_value(v)
    start = time.perf_counter()
    if submit:
        at.button(key="train_submit").click().run()
        run_until(at, _training_collected, timeout=60)
    else:
        at.run()
    note(f"round {r} ran in {time.perf_counter() - start:.2f} s")
    check_page(at, f"{page} round {r} {values}", finite)


def _session(page: str, model: str | None):
    at = make_app()
    if model is not None:
        inject_model(at, tiny_result(), "tiny score")
    if model == "score+dae":
        inject_model(at, tiny_result(kind="dae"), "tiny dae", activate=False)
    at.run()
    return open_page(at, page)


def _fuzz(page: str, model: str | None, data, finite) -> None:
    at = _session(page, model)
    check_page(at, f"{page} as opened", finite)
    rounds = data.draw(st.integers(1, 3), label="rounds")
    for r in range(rounds):
        submit = page == "views/train.py" and data.draw(st.booleans(), label="submit the form")
        fuzz_round(data, at, page, submit, r, finite)


def _make_test(page: str, n: int):
    @pytest.mark.parametrize("model", [None, "score+dae"], ids=["no_model", "with_model"])
    @settings(FUZZ, max_examples=n)
    @given(data=st.data())
    def test(model, data, assert_finite_figure):
        _fuzz(page, model, data, assert_finite_figure)

    name = page.split("/")[1].removesuffix(".py")
    test.__name__ = f"test_fuzz_{name}"
    return test


for _page, _n in PAGES.items():
    _t = _make_test(_page, _n)
    globals()[_t.__name__] = _t
