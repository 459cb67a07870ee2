"""Turn errors into friendly messages: the audience never sees a traceback.

    with friendly_errors("Sampling"):
        traj = run_sampler(...)

A `ScorevizError` (the core's typed errors, written for students) is shown with st.error, its
text escaped (`scoreviz.text.escape`: messages quote file names and CSV cells);
anything else is logged server-side and shown as a short generic message.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import streamlit as st

from scoreviz.errors import ScorevizError
from scoreviz.text import escape

log = logging.getLogger("scoreviz")


@contextmanager
def friendly_errors(what: str = "This view"):
    """Catch errors inside the block and show them as st.error instead of a traceback."""
    try:
        yield
    except ScorevizError as exc:
        st.error(escape(str(exc), limit=600))
    except Exception as exc:  # noqa: BLE001 - last line of defence in front of an audience
        log.exception("Unexpected error in %s", what)
        st.error(
            f"{what} hit an unexpected problem ({type(exc).__name__}). "
            "Try other settings; the rest of the app keeps working."
        )
