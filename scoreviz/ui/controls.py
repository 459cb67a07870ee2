"""One control spec per page setting: its widget, range, step, default, help and URL name, read
both by the widget (`draw`) and by the link table (`page_params`), as `samplers.Knob` is for the
sampler settings. Adding a page setting is one `Control` in `PAGE_CONTROLS`.

    n = draw(FIELD_ARROWS, col)                    # st.slider("Arrows per side", 7, 31, 15, 2, ...)
    links.page_params("views/score_field.py")      # ... Param("arrows", "field_arrows", ...)

A Control's session key may hold "{process}" (the t and σ sliders: each process has its own
stops, so switching the process never leaves a slider on a value it does not offer). The value
kinds (`integer`, `flag`, `t_value`, ...) turn the URL's text into a value the widget accepts,
raising ValueError for anything else, and back (`show`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from scoreviz.figures.sampling import X0_MIN_SNR
from scoreviz.likelihood import ODE_STEPS
from scoreviz.losses import WEIGHTINGS
from scoreviz.pipelines.guidance import GUIDANCE_SAMPLERS, W_STOPS
from scoreviz.pipelines.likelihood import ODE_STEP_CHOICES
from scoreviz.processes import get_process
from scoreviz.samplers import SAMPLERS, Knob, sampler_labels
from scoreviz.stops import nearest, sigma_stops, t_labels, t_stops


# ----------------------------------------------------------------------------- value kinds
def choice(options: Callable[[], Mapping | list | tuple]) -> Callable[[str, str], str]:
    """A registry key (or an option) among `options()`."""

    def parse(text: str, _process: str) -> str:
        if text not in list(options()):
            raise ValueError(text)
        return text

    return parse


def integer(lo: int, hi: int, step: int = 1) -> Callable[[str, str], int]:
    """An int in [lo, hi] on the slider's step grid."""

    def parse(text: str, _process: str) -> int:
        v = int(text)
        if not lo <= v <= hi or (v - lo) % step:
            raise ValueError(text)
        return v

    return parse


def one_of(values: tuple) -> Callable[[str, str], Any]:
    """One of a select_slider's numeric options."""

    def parse(text: str, _process: str):
        v = type(values[0])(text)
        if v not in values:
            raise ValueError(text)
        return v

    return parse


def flag(text: str, _process: str) -> bool:
    if text not in ("0", "1", "true", "false"):
        raise ValueError(text)
    return text in ("1", "true")


def show_flag(value: Any) -> str:
    return "1" if value else "0"


def real(lo: float, hi: float) -> Callable[[str, str], float]:
    def parse(text: str, _process: str) -> float:
        v = float(text)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(text)
        return v

    return parse


def t_value(text: str, process_key: str) -> float:
    """A time t in [t_min, 1], moved to the t slider's nearest stop."""
    v = real(0.0, 1.0)(text, process_key)
    return nearest(t_stops(get_process(process_key)), v)


def sigma_range(text: str, process_key: str) -> tuple[float, float]:
    """Two noise levels "lo~hi", each moved to the σ slider's nearest stop."""
    stops = sigma_stops(get_process(process_key))
    lo, hi = (real(0.0, math.inf)(p, process_key) for p in text.split("~"))
    if not 0 < lo <= hi:
        raise ValueError(text)
    return nearest(stops, lo, log=True), nearest(stops, hi, log=True)


def show_number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def show_range(value: Any) -> str:
    return "~".join(f"{float(v):.6g}" for v in value)


def several(options: Callable[[], Mapping | list]) -> Callable[[str, str], list[str]]:
    """A comma-separated list of keys among `options()` (a multiselect)."""

    def parse(text: str, _process: str) -> list[str]:
        items = [s for s in text.split(",") if s]
        if not items or any(s not in list(options()) for s in items):
            raise ValueError(text)
        return list(dict.fromkeys(items))

    return parse


def show_list(value: Any) -> str:
    return ",".join(value)


@dataclass(frozen=True)
class Param:
    """One URL parameter: its name, the session-state key it fills ("{process}" is replaced by
    the process key: per-process widgets) and its text form.

    parse(text, process_key) -> value, raising ValueError for text that is not a valid value;
    show(value) -> text.
    """

    name: str
    key: str
    parse: Callable[[str, str], Any]
    show: Callable[[Any], str] = str
    max_chars: int = 200  # longer text is cut before parsing (a drawing's code is longer)

    def session_key(self, process_key: str) -> str:
        return self.key.replace("{process}", process_key)


# ----------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class Control:
    """One page setting. `widget`: "slider" (lo, hi, step; ints give an integer slider),
    "select_slider" (numeric `options`), "toggle", "checkbox", "selectbox" / "radio" (`options`:
    a mapping key -> label, or a sequence), "multiselect" (`options` as for selectbox),
    "t" (the process' t stops, labelled with σ_t) or "sigma_range" (two of its σ stops).
    `options` may be a callable giving them (registries, read when used)."""

    name: str  # URL parameter
    key: str  # session key ("{process}": per process)
    label: str
    widget: str
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    options: Any = None
    help: str | None = None

    def session_key(self, process_key: str) -> str:
        return self.key.replace("{process}", process_key)

    def choices(self) -> Any:
        return self.options() if callable(self.options) else self.options

    @property
    def param(self) -> Param:
        """The URL parameter of this setting (parse and show by its widget kind)."""
        w = self.widget
        if w == "slider":
            if all(float(v).is_integer() for v in (self.lo, self.hi, self.default, self.step)):
                parse = integer(int(self.lo), int(self.hi), int(self.step))
                return Param(self.name, self.key, parse)
            return Param(self.name, self.key, real(self.lo, self.hi), show_number)
        if w in ("toggle", "checkbox"):
            return Param(self.name, self.key, flag, show_flag)
        if w == "select_slider":
            return Param(self.name, self.key, one_of(tuple(self.options)))
        if w in ("selectbox", "radio"):
            return Param(self.name, self.key, choice(self.choices))
        if w == "multiselect":
            return Param(self.name, self.key, several(self.choices), show_list)
        if w == "t":
            return Param(self.name, self.key, t_value, show_number)
        if w == "sigma_range":
            return Param(self.name, self.key, sigma_range, show_range)
        raise ValueError(f"unknown widget kind {w!r}")


def knob_control(knob: Knob) -> Control:
    """A sampler `Knob` as a page setting (URL name: its key without "sampler_")."""
    return Control(
        knob.key.removeprefix("sampler_"), knob.key, knob.label, "slider", knob.default,
        knob.lo, knob.hi, knob.step, help=knob.help,
    )  # fmt: skip


def _format(options: Any) -> Callable[[Any], str] | None:
    return options.get if isinstance(options, Mapping) else None


def draw(c: Control, where: Any = st, process=None, **overrides) -> Any:
    """Draw the widget of `c` in `where` (st, a column, the sidebar) and return its value.
    `overrides`: Control fields known only at run time (a default or label that depends on the
    model); other keyword arguments (e.g. disabled) go to the widget. `process`: the sidebar's
    NoiseProcess, for "t" and "sigma_range" controls."""
    fields = {k: overrides.pop(k) for k in list(overrides) if k in Control.__dataclass_fields__}
    c = replace(c, **fields)
    key = c.session_key(process.name if process is not None else "")
    if c.widget == "slider":
        return where.slider(
            c.label, c.lo, c.hi, c.default, c.step, key=key, help=c.help, **overrides
        )
    if c.widget in ("toggle", "checkbox"):
        draw_fn = where.toggle if c.widget == "toggle" else where.checkbox
        return draw_fn(c.label, value=c.default, key=key, help=c.help, **overrides)
    if c.widget == "select_slider":
        return where.select_slider(
            c.label, list(c.options), value=c.default, key=key, help=c.help, **overrides
        )
    if c.widget in ("selectbox", "radio", "multiselect"):
        options = c.choices()
        kw = {"format_func": _format(options)} if _format(options) else {}
        if c.widget == "multiselect":
            kw["default"] = c.default
        elif c.default is not None:
            kw["index"] = list(options).index(c.default)
        if c.widget == "radio":
            kw["horizontal"] = True
        draw_fn = getattr(where, c.widget)
        return draw_fn(c.label, list(options), key=key, help=c.help, **kw, **overrides)
    if c.widget == "t":
        stops, labels = t_stops(process), t_labels(process)
        return float(
            where.select_slider(
                c.label, options=stops, value=nearest(stops, c.default),
                format_func=labels.__getitem__, key=key, help=c.help, **overrides,
            )
        )  # fmt: skip
    if c.widget == "sigma_range":
        stops = sigma_stops(process)
        # never the top stop by default: at t = 1, α ≈ 0 on VP
        lo, hi = c.default[0], min(stops[-2], c.default[1])
        lo, hi = nearest(stops, lo, log=True), nearest(stops, hi, log=True)
        return where.select_slider(
            c.label, stops, value=(lo, hi), format_func="{:.3g}".format, key=key, help=c.help,
            **overrides,
        )  # fmt: skip
    raise ValueError(f"unknown widget kind {c.widget!r}")


# ----------------------------------------------------------------------------- the pages
T_HELP = "t = 0 is the data, t = 1 is (nearly) pure noise."
FORWARD_T = Control("t", "forward_t_{process}", "Time t (noise level)", "t", 0.2, help=T_HELP)

FIELD_T = Control("t", "field_t_{process}", "Time t (noise level)", "t", 0.1, help=T_HELP)
FIELD_ARROWS = Control(
    "arrows", "field_arrows", "Arrows per side", "slider", 15, 7, 31, 2, help="Arrow density."
)
FIELD_SCALED = Control(
    "scaled", "field_scaled", "σ_t·score", "toggle", True,
    help="On: σ_t·score = −E[ε | x_t], of order 1 at every noise level, arrows rescaled at each "
    "t. Off: the raw score on one arrow scale for every t, so it visibly grows like 1/σ_t as "
    "t → 0 (arrows longer than the cap are drawn at the cap).",
)  # fmt: skip
FIELD_OVERLAY = Control(
    "overlay", "field_overlay", "Overlay", "toggle", False,
    help="One panel: learned (thick, orange) under exact (thin, green); where they agree, the "
    "green line sits inside the orange one.",
)  # fmt: skip
FIELD_VELOCITY = Control(
    "velocity", "field_velocity", "Velocity v", "toggle", False,
    help="Flow matching's velocity v = E[ε − x₀ | x_t] instead of the score: learned beside "
    "exact. On the linear path the probability-flow ODE moves particles along it.",
)  # fmt: skip

# σ from 0.05 to 2, or to the stop below the top one (drawn by `draw`)
DAE_SIGMAS = Control(
    "sigmas", "dae_range_{process}", "Noise levels σ (4 panels, log-spaced)", "sigma_range",
    (0.05, 2.0),
)  # fmt: skip
# 80 by default: each point brings a clean dot, a noisy dot and an arrow per denoiser; at 120
# the large-σ panel was a thicket on a projector, and the browser took ~100 ms longer to draw
# the figure (benchmarks/bench.py --only redraw)
DAE_POINTS = Control("points", "dae_points", "Points", "slider", 80, 20, 400, 20)

LOSS_WEIGHTINGS = Control(
    "weightings", "loss_weightings", "Weightings λ(t)", "multiselect", ("sigma2", "one"),
    options=lambda: WEIGHTINGS,
)  # fmt: skip
LOSS_BINS = Control("bins", "loss_bins", "t bins", "slider", 24, 20, 60, 4)
LOSS_PER_BIN = Control(
    "per_bin", "loss_per_bin", "Samples per bin", "select_slider", 256,
    options=(128, 256, 512, 1024),
)  # fmt: skip

SAMPLER = Control("sampler", "sampler", "Sampler", "selectbox", options=sampler_labels)
SAMPLER_STEPS = Control("steps", "sampler_steps", "Steps", "slider", 200, 1, 500, 1)
SAMPLER_PARTICLES = Control(
    "particles", "sampler_particles", "Particles", "slider", 1000, 1, 2000, 1
)
SAMPLER_X0 = Control(
    "x0", "sampler_x0", "Show x̂₀ (Tweedie)", "toggle", False,
    help="A second row: the denoised preview x̂₀ = (x_t + σ_t² s)/α_t of every particle, from "
    f"where α_t/σ_t ≥ {X0_MIN_SNR} (before, it divides by α_t ≈ 0).",
)  # fmt: skip
SAMPLER_TRAILS = Control(
    "trails", "sampler_trails", "Trails", "toggle", True,
    help="The last 10 frames of 8 highlighted particles, fading.",
)  # fmt: skip
SAMPLER_SHOW = Control(
    "show", "sampler_show", "Show", "radio", "Learned and exact",
    options=("Learned and exact", "Learned only", "Exact only"),
)  # fmt: skip
SAMPLER_MEMORISED = Control(
    "memorised", "sampler_memorised", "Add the memorising optimum", "checkbox", True
)
SAMPLER_STEPS_CHART = Control(
    "steps_chart", "sampler_steps_chart", "Quality vs number of steps", "toggle", False,
    help="The chosen sampler at 1, 2, 4, …, 200 steps with the learned and the exact score: "
    "nats lost and W2 against fresh exact samples (a few seconds, computed when switched on).",
)  # fmt: skip

LIKELIHOOD_STEPS = Control(
    "ode_steps", "likelihood_steps", "ODE steps (RK4)", "select_slider", ODE_STEPS,
    options=ODE_STEP_CHOICES,
    help="Fixed RK4 steps from t_min to 1, four score evaluations each; the table shows the "
    "solver's own error (the exact score's ODE against the exact density) at this count.",
)  # fmt: skip
LIKELIHOOD_GRID = Control(
    "grid", "likelihood_grid", "Grid points per side", "select_slider", 60,
    options=(40, 60, 80),
    help="Each grid point is one ODE solve: the time grows with its square.",
)  # fmt: skip


# Guidance (issue 24). The class is its number as text ("0", "1", ...): the options and their
# names depend on the data, so the page passes them (`draw(GUIDE_CLASS, options=...)`); a link
# accepts any number and the page falls back to class 0 where the data has fewer classes.
MAX_CLASSES = 256
GUIDE_CLASS = Control(
    "class", "guide_class", "Class c", "selectbox", "0",
    options=lambda: [str(i) for i in range(MAX_CLASSES)],
)  # fmt: skip
GUIDE_W = Control(
    "w", "guide_w", "Guidance weight w", "select_slider", 3.0, options=W_STOPS,
    help="s = s_u + w (s_c − s_u): w = 0 unconditional, w = 1 conditional, w > 1 guided past "
    "it. Papers writing s_c + w′(s_c − s_u) use w′ = w − 1 (their “1 + w′” is this w).",
)  # fmt: skip
GUIDE_SAMPLER = Control(
    "guide_sampler", "guide_sampler", "Sampler", "selectbox", "ddpm", options=GUIDANCE_SAMPLERS
)
# The Train form's switch (not a view setting, so no URL parameter: drawn in the form)
TRAIN_CONDITIONAL = Control(
    "conditional", "tf_conditional", "Class-conditional (for Guidance)", "toggle", False,
    help="A class embedding with a null class, trained with label dropout (20 % of the samples "
    "lose their class): one network gives s(x, t, c) and s(x, t), what the Guidance page mixes. "
    "Built-in data only (uploads and drawings have no classes).",
)  # fmt: skip


def sampler_knobs() -> tuple[Control, ...]:
    """Every sampler's knobs (from the registry), each once."""
    knobs = {k.key: k for spec in SAMPLERS.values() for k in spec.knobs}
    return tuple(knob_control(k) for k in knobs.values())


# page script -> its settings (the link table and the scenes read these)
PAGE_CONTROLS: dict[str, Callable[[], tuple[Control, ...]]] = {
    "views/forward.py": lambda: (FORWARD_T,),
    "views/score_field.py": lambda: (
        FIELD_T,
        FIELD_SCALED,
        FIELD_ARROWS,
        FIELD_OVERLAY,
        FIELD_VELOCITY,
    ),  # fmt: skip
    "views/dae.py": lambda: (DAE_SIGMAS, DAE_POINTS),
    "views/loss.py": lambda: (LOSS_WEIGHTINGS, LOSS_BINS, LOSS_PER_BIN),
    "views/sampling.py": lambda: (
        SAMPLER,
        SAMPLER_STEPS,
        SAMPLER_PARTICLES,
        *sampler_knobs(),
        SAMPLER_X0,
        SAMPLER_TRAILS,
        SAMPLER_SHOW,
        SAMPLER_MEMORISED,
        SAMPLER_STEPS_CHART,
    ),  # fmt: skip
    "views/likelihood.py": lambda: (LIKELIHOOD_STEPS, LIKELIHOOD_GRID),
    "views/guidance.py": lambda: (GUIDE_CLASS, GUIDE_W, GUIDE_SAMPLER),
}


def page_controls(page_file: str) -> tuple[Control, ...]:
    return PAGE_CONTROLS.get(page_file, lambda: ())()


def page_params(page_file: str) -> tuple[Param, ...]:
    """The URL parameters of a page: one per setting."""
    return tuple(c.param for c in page_controls(page_file))
