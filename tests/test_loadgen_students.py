"""benchmarks/loadgen_students.py's pure parts: the students' settings mix (valid, diverse, their
own per seed), the static files a first visit names, and the tables (medians over repeats, the
capacity rule, the 1 -> 2 replica prediction)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import loadgen_students as ls  # noqa: E402

from scoreviz.distributions import distribution_labels  # noqa: E402
from scoreviz.processes import process_labels  # noqa: E402
from scoreviz.samplers import SAMPLERS  # noqa: E402


def test_followers_keep_the_lecturers_defaults_and_the_others_pick_valid_settings():
    assert ls.pick_settings(random.Random(1), follow=1.0) == {}
    picks = [ls.pick_settings(random.Random(f"run/{i}"), follow=0.0) for i in range(200)]
    for s in picks:
        assert set(s) == {"data", "process", "seed", "sampler", "steps", "particles"}
        assert s["data"] in distribution_labels() and s["process"] in process_labels()
        assert s["sampler"] in SAMPLERS and 1 <= int(s["seed"]) < 1000
    # students differ: many distinct settings, every listed choice used
    assert len({tuple(sorted(s.items())) for s in picks}) > 190
    assert {s["data"] for s in picks} == set(ls.DATA)
    assert {s["sampler"] for s in picks} == set(ls.SAMPLERS)


def test_about_the_follow_share_stays_at_the_defaults():
    rng = random.Random(7)
    followers = sum(ls.pick_settings(rng, follow=0.5) == {} for _ in range(2000))
    assert 900 < followers < 1100


def test_a_first_visit_fetches_the_files_the_page_names():
    page = '<script src="./static/js/index.abc.js"></script><link href="./static/css/x.css">'
    page += '<link href="./favicon.png"><a href="https://example.org/static/no.js">'
    assert ls.STATIC_REF.findall(page) == ["static/js/index.abc.js", "static/css/x.css"]
    assert all(p.startswith("static/js/PlotlyChart.") for p in ls.static_paths())


def _cell(replicas: int, n: int, key_p95: float, cpu: float) -> dict:
    kinds = {"key": {"count": 10, "failed": 0, "p50": 0.1, "p95": key_p95, "max": 1.0}}
    return {
        "replicas": replicas,
        "sessions": n,
        "start": "cold",
        "load_before": 8.0,
        "load_after": 9.0,
        "cpu_per_student_minute": cpu,
        "kinds": kinds,
    }


def test_the_summary_is_the_median_over_repeats_and_the_capacity_rule_follows_the_cpu():
    cells = [_cell(1, 16, p, c) for p, c in ((0.3, 1.0), (0.5, 2.0), (0.9, 3.0))]
    cells.append(_cell(2, 32, 0.4, 1.2))
    text = ls.summary(cells)
    assert "| 1 | 16 | cold | 3 | 0.50 (0.30-0.90) |" in text
    assert "| 2 | 32 | cold | 1 | 0.40 |" in text
    cap = ls.capacity(cells)
    # median CPU-s per student-minute over the 4 cells: (1.2 + 2.0) / 2 = 1.6; 100 students
    # keep 1.6 * 100 / 60 = 2.67 cores busy; / 0.6 = 4.4 cores
    assert "median 1.60" in cap and "keep 2.7 cores busy" in cap and "4.4 cores" in cap
    assert "| 1 replica N=16 -> 2 replicas N=32 (cold) | 0.50 -> 0.40 |" in cap


@pytest.mark.parametrize("follow", [0.0, 1.0])
def test_a_students_query_is_its_settings(follow):
    s = ls.pick_settings(random.Random(3), follow)
    assert ls.query(s) == "&".join(f"{k}={v}" for k, v in s.items())
