"""tests/tiers.py: the markers that split the suite are found from what a test reaches, through
helpers, cached helpers, imports inside functions, module attributes, classes and fixtures.

The sample functions are looked up by name (`_sample`), so that this module's own tests reach
none of them and stay in the quick tier.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from scoreviz.distributions import get_distribution
from tests import tiers


def _pure():
    return get_distribution("eight_gaussians").sample(10)


def _uses_apptest():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file("app.py")


def _trains_through_a_cached_helper():
    from tests.apptest_utils import tiny_result  # functools.cache, imports training inside

    return tiny_result()


def _trains_through_a_module_attribute():
    import scoreviz.training as training

    return training.train(training.TrainConfig(steps=1))


def _starts_a_process():
    return subprocess.run([sys.executable, "-c", "pass"], check=True)


class _Job:
    def run(self):
        return _trains_through_a_module_attribute()


def _runs_a_job():
    return _Job().run()


def _sample(name: str):
    return globals()[name]


def test_a_pure_test_reaches_nothing_costly():
    assert tiers._reached(_sample("_pure")) == set()


def test_each_costly_thing_is_found_where_it_hides():
    assert tiers._reached(_sample("_uses_apptest")) == {"apptest"}
    assert tiers._reached(_sample("_trains_through_a_cached_helper")) == {"trains"}
    assert tiers._reached(_sample("_trains_through_a_module_attribute")) == {"trains"}
    assert tiers._reached(_sample("_starts_a_process")) == {"subprocess"}
    assert tiers._reached(_sample("_runs_a_job")) == {"trains"}


def test_a_fixture_gives_its_markers_to_the_test():
    fixture = SimpleNamespace(func=_sample("_uses_apptest"))
    item = SimpleNamespace(
        function=_sample("_pure"),
        _fixtureinfo=SimpleNamespace(name2fixturedefs={"app": [fixture]}),
    )
    assert tiers.markers_for(item) == {"apptest"}


def test_the_hook_puts_this_test_in_the_quick_tier(request):
    assert request.node.get_closest_marker("quick") is not None
    assert not any(request.node.get_closest_marker(m) for m in tiers.NOT_QUICK)


def test_a_quick_test_that_trains_or_starts_a_process_fails():
    """The run-time check behind the reading: hidden from it (looked up by name), these calls
    reach training and a new process while this quick test runs."""
    with pytest.raises(AssertionError, match="quick-tier test reached training"):
        _sample("_trains_through_a_module_attribute")()
    with pytest.raises(AssertionError, match="quick-tier test reached a new process"):
        _sample("_starts_a_process")()
