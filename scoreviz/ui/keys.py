"""Every session-state key of the app, its default, and what it holds: the bottom of `scoreviz.ui`
(imports nothing of it). Per session (st.session_state, never module globals: Streamlit sessions
are threads of one process).

The shared sidebar's settings (widgets, and URL parameters: `links.GLOBAL`):
    DISTRIBUTION   registry key of the chosen built-in distribution, or "upload", "drawn",
                   "typed" (the session's own data)
    PROCESS        registry key of the noise process
    SEED           int seed for sampling / training
    PRESENT        presentation mode on (`present`)
    SCENE          name of the open scene whose card is shown, or None (`scenes`)
The session's data and models (`models`):
    MODELS         dict display name -> TrainResult (at most models.MAX_MODELS kept, oldest out)
    ACTIVE_MODEL   display name of the active model, or None (a sidebar widget)
    UPLOAD         models.UploadedData or None: an uploaded point cloud, this session only
    UPLOAD_H       the upload's smoothing width (a widget on Train, `transfer`)
    DRAWING        the drawn data in use: its code (`scoreviz.sketch.encode_strokes`), or None
    WORD           the typed data in use: its word, or None (both travel in links)
Bookkeeping (leading "_": never a widget):
    TRAINING_JOB      the session's jobs.TrainingJob, if any (`training_runner`)
    TRAINING_NOTICE   (kind, text) of the last training's outcome, until the next one starts
    SCENE_QUEUE       TrainConfigs the open scene still has to train, in order
    SCENE_GOTO        the page a just-opened scene still has to switch to
    PRESENT_KEPT      presentation mode's value, kept where a page switch drops the toggle's
    SCENE_TRAINED     how many of the open scene's trainings have started (while it prepares)
    LINKS_READ        True once this session's first run read its link
    LINKS_NOTICE      the notice about a link's invalid values, shown once
    PAGE              the script of the page this run shows (set by app.py)
    MAIN_SENT         time.monotonic() when the last main chart was sent (`charts`)
    TRAIN_NAME        the name a Train-page training is started under
    DAE_TRAINED       the DAE page's "trained" note, shown once after its rerun
    EXPORT_MEMO       the last exported model file (`transfer`)
    UPLOAD_ERROR, IMPORT_ERROR   (file id, message) of a refused upload / model file
    CANVAS_ROUND   the drawing canvas' generation: Clear and Undo remount it (`ui.sketch`)
    CANVAS_START   the strokes a remounted canvas starts from (Undo: all but the last)
Keys made from a name (helpers below): `pending(key)` parks a widget value for the next run,
`prefetch(slider)` remembers a slider's last value (`prefetch`), `seen(what)` the last file
handled, `export_files(name)` an export menu's key prefix, `loss_floors(dist)` whether the
Loss page may compute an upload's exact floors.
Each page's settings are keyed by their control specs (`scoreviz.ui.controls`: "field_t_<process>",
"sampler_steps", ...), which also give their defaults. Widgets that are no view setting keep their
keys where they are drawn: buttons, the Train form ("tf_*"), the DAE trainer ("dae_train_*"),
"dae_hidden", the export menus.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

DISTRIBUTION = "distribution"
PROCESS = "process"
SEED = "seed"
PRESENT = "present"
SCENE = "scene"
MODELS = "models"
ACTIVE_MODEL = "active_model"
UPLOAD = "upload"
UPLOAD_H = "upload_h"
DRAWING = "drawing"
WORD = "word"
CANVAS_ROUND = "_canvas_round"
CANVAS_START = "_canvas_start"
TRAINING_JOB = "training_job"
TRAINING_NOTICE = "training_notice"
SCENE_QUEUE = "_scene_trainings"
SCENE_GOTO = "_scene_goto"
SCENE_TRAINED = "_scene_trained"
PRESENT_KEPT = "_present_kept"
LINKS_READ = "_links_read"
# {widget key: value} of every page setting last shown (links.remember / links.recall): Streamlit
# drops a widget's state when its page is left, so without this a page came back at its defaults
PAGE_SETTINGS = "_page_settings"
LINKS_NOTICE = "_links_notice"
PAGE = "_page_file"
MAIN_SENT = "_main_chart_sent_at"
TRAIN_NAME = "_train_name"
DAE_TRAINED = "dae_trained_note"
EXPORT_MEMO = "_export_memo"
UPLOAD_ERROR = "_upload_error"
IMPORT_ERROR = "_import_error"

DEFAULT_DISTRIBUTION = "eight_gaussians"
DEFAULT_PROCESS = "vp_linear"
# The defaults every run starts from (a link's values, read first, take precedence). MODELS is
# made fresh per session (a mutable default must not be shared).
DEFAULTS: dict[str, Any] = {
    DISTRIBUTION: DEFAULT_DISTRIBUTION,
    PROCESS: DEFAULT_PROCESS,
    SEED: 0,
    ACTIVE_MODEL: None,
    UPLOAD: None,
    DRAWING: None,
    WORD: None,
    PRESENT: False,
    SCENE: None,
}


def init_state() -> None:
    """Defaults for every app-wide key (idempotent)."""
    ss = st.session_state
    for key, value in DEFAULTS.items():
        ss.setdefault(key, value)
    ss.setdefault(MODELS, OrderedDict())


def pending(key: str) -> str:
    return f"_pending_{key}"


def prefetch(slider: str) -> str:
    return f"_prefetch_{slider}"


def seen(what: str) -> str:
    return f"_{what}_seen"


def export_files(name: str) -> str:
    return f"export-{name}"


def loss_floors(dist_key: str) -> str:
    return f"_loss_exact_floors:{dist_key}"


def set_widget(key: str, value: Any) -> bool:
    """Set a widget-bound key now if allowed, else park it for the next run (True: set now).
    Streamlit refuses a write to a key whose widget was already drawn in this run."""
    try:
        st.session_state[key] = value
        return True
    except StreamlitAPIException:
        st.session_state[pending(key)] = value
        return False


def apply_pending(*widget_keys: str) -> None:
    """Values parked by `set_widget` into their keys (call before the widgets are drawn)."""
    ss = st.session_state
    for key in widget_keys:
        if pending(key) in ss:
            ss[key] = ss.pop(pending(key))


def request_distribution(key: str) -> bool:
    """Select a distribution ("upload", "drawn", "typed" or a registry key); False: applied on
    the next run."""
    return set_widget(DISTRIBUTION, key)
