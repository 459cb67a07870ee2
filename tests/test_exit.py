"""A clean exit: a process that ran the app exits with status 0, also while a model trains.

Without care it aborts at interpreter shutdown ("terminate called without an active
exception", status 134): a background thread is still inside torch when Python exits.
`scoreviz.jobs` stops and joins every training job before that (atexit); the prefetch worker is
joined by concurrent.futures. Each test runs the app in a process of its own and waits on its
state (a model training, polled), never on a sleep.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.browser_utils import CHROMIUM, CHROMIUM_ARGS, free_port, require_chromium

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Train the default model (20,000 steps of a small network: still training at exit), open the
# Score field, and leave while the job is inside torch.
APPTEST_RUN = textwrap.dedent(
    """
    import functools
    import scoreviz.training as training
    from scoreviz.models import ModelConfig
    from scoreviz.ui.scenes import load_scenes
    from tests.apptest_utils import assert_no_exception, make_app, open_page, run_until

    load_scenes()  # checked with the real TrainConfig before it is shortened below
    small = ModelConfig(width=32, depth=2)
    training.TrainConfig = functools.partial(training.TrainConfig, steps=20_000, model=small)
    at = make_app().run()
    next(b for b in at.button if b.label == "Train the default model").click().run()
    job = at.session_state["training_job"]
    run_until(at, lambda a: job.steps_done >= 25, timeout=120)
    open_page(at, "views/score_field.py")
    assert_no_exception(at)
    assert not job.done, "the job must still be training when the process exits"
    print("LEAVING", flush=True)
    """
)


def test_a_process_that_ran_the_app_exits_cleanly_while_a_model_trains():
    run = subprocess.run(
        [sys.executable, "-c", APPTEST_RUN], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    out = run.stdout + run.stderr
    assert "LEAVING" in run.stdout, out[-3000:]
    assert "terminate called" not in out
    assert run.returncode == 0, out[-3000:]


def _wait_for(cond, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, "the server exited early"
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


@pytest.mark.browser
def test_ctrl_c_of_a_server_that_is_training_exits_cleanly(tmp_path):
    """`streamlit run app.py`, a student presses "Train the default model" in Chromium, the
    lecturer presses Ctrl-C (SIGINT) while it trains: the server exits with status 0."""
    require_chromium()
    import urllib.request

    from playwright.sync_api import sync_playwright

    port = free_port()
    log = tmp_path / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok"
        except OSError:
            return False

    try:
        _wait_for(healthy, 60, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("button", name="Train the default model").click(timeout=60_000)
            # Home's live progress: "Training “default · …”: step 25 / 3000" (inside torch)
            page.get_by_text(re.compile(r"step [1-9][0-9]* / [0-9]")).first.wait_for(
                timeout=120_000
            )
            proc.send_signal(signal.SIGINT)  # Ctrl-C, with the tab still open
            code = proc.wait(60)
            browser.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert "terminate called" not in text, text[-3000:]
    assert code == 0, text[-3000:]
