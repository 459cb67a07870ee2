"""Training time estimates (scoreviz.costs): the cost model's shape and its calibration by the
pace measured on this machine (`Pace`), with injected measurements (no timing of this box)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from scoreviz import costs
from scoreviz.models import ModelConfig
from scoreviz.training import TrainConfig

DEFAULT = TrainConfig()


def history(seconds_per_step: float, steps: int, warmup_s: float = 1.0) -> pd.DataFrame:
    """A run's history: slow first WARMUP steps (warmup_s each), then a steady pace."""
    per = [warmup_s] * costs.WARMUP + [seconds_per_step] * (steps - costs.WARMUP)
    elapsed = pd.Series(per).cumsum()
    return pd.DataFrame({"step": range(1, steps + 1), "loss": 1.0, "elapsed": elapsed})


def test_measured_step_seconds_leaves_the_warm_up_out():
    assert costs.measured_step_seconds(history(0.004, 2000)) == pytest.approx(0.004)
    assert costs.measured_step_seconds(history(0.004, 15)) is None  # too short to tell


def test_the_estimate_is_the_measured_pace_times_the_steps():
    """Issue 20: the button said ~5 s where 2,000 steps took 8-12 s on an idle 2-core box."""
    pace = costs.Pace(probe=None)
    assert pace.seconds(DEFAULT) == pytest.approx(costs.train_seconds(DEFAULT))  # nothing known
    pace.record_history(DEFAULT, history(0.005, 2000))  # 2,000 steps took ~10 s here
    assert pace.seconds(DEFAULT) == pytest.approx(10.0, rel=1e-6)
    longer = dataclasses.replace(DEFAULT, steps=4000)
    assert pace.seconds(longer) == pytest.approx(20.0, rel=1e-6)
    # another size scales by the cost model, at this machine's measured factor
    big = dataclasses.replace(DEFAULT, model=ModelConfig(width=256, depth=6), batch_size=2048)
    factor = 0.005 / costs.step_seconds(DEFAULT)
    assert pace.seconds(big) == pytest.approx(costs.train_seconds(big) * factor)


def test_the_median_of_recent_runs_resists_one_odd_run():
    pace = costs.Pace(window=5, probe=None)
    for s in (0.005, 0.0051, 0.0049, 0.05):  # one run on a machine busy with something else
        pace.record(DEFAULT, s)
    assert pace.seconds(DEFAULT) == pytest.approx(2000 * 0.00505, rel=0.02)
    for _ in range(5):  # the machine got slower for good: the window follows it
        pace.record(DEFAULT, 0.01)
    assert pace.seconds(DEFAULT) == pytest.approx(20.0)
    pace.record(DEFAULT, None)  # a run too short to tell changes nothing
    pace.record(DEFAULT, 0.0)
    assert pace.seconds(DEFAULT) == pytest.approx(20.0)


def test_the_first_estimate_probes_once_and_survives_a_failing_probe():
    calls = []

    def probe(config):
        calls.append(config)
        return 0.006

    pace = costs.Pace(probe=probe)
    assert pace.seconds(DEFAULT) == pytest.approx(12.0)
    assert pace.seconds(DEFAULT) == pytest.approx(12.0)
    assert len(calls) == 1

    def broken(config):
        raise RuntimeError("no torch threads left")

    failing = costs.Pace(probe=broken)
    assert failing.seconds(DEFAULT) == pytest.approx(costs.train_seconds(DEFAULT))


def test_the_real_probe_measures_a_positive_pace():
    """The default probe trains PROBE_STEPS steps here and returns seconds per step (no bound on
    the value: this box's speed is not the test's business)."""
    seconds = costs._probe(DEFAULT)
    assert seconds is not None and seconds > 0
