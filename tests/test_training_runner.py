"""The Streamlit glue of training jobs (scoreviz.ui.training_runner): the queue's words. The
jobs themselves are tested without Streamlit in tests/test_jobs.py."""

from __future__ import annotations

from scoreviz.ui import training_runner as tr


def test_queue_text_names_the_place_and_the_wait():
    assert "1st in line, about" in tr.queue_text((1, 12.0))
    assert tr.queue_text((2, 40.0)).startswith(
        "Waiting for a free training slot: 2nd in line, about 40 s"
    )
    assert tr.queue_text(None) == "Waiting for a free training slot…"
