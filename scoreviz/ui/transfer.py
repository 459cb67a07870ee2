"""Files in and out of a session: upload a point cloud; export / import a trained model.

Both blocks never change anything unless the file is accepted: a rejected upload shows the
parser's message (`DataError`) and the previous dataset stays; a rejected model file
(`ModelFileError`) shows its message and the models stay as they were. A file is parsed once
per upload (keyed by Streamlit's file id), not on every rerun.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np
import streamlit as st

from scoreviz import model_io
from scoreviz.data_io import (
    MAX_COMPONENTS,
    parse_point_cloud,
    reduce_components,
    select_bandwidth,
    smoothing_options,
)
from scoreviz.errors import ScorevizError
from scoreviz.figures.forward import data_figure
from scoreviz.problem import Problem
from scoreviz.text import escape
from scoreviz.ui import cache, keys
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import UploadedData, add_model, current_selection

log = logging.getLogger("scoreviz")

MAX_UPLOAD_MB = 5  # also .streamlit/config.toml server.maxUploadSize
MAX_POINTS = 20_000


def _once(key: str, file) -> bool:
    """True the first time this uploaded file is seen under `key` (then remembers it)."""
    seen_key = keys.seen(key)
    if st.session_state.get(seen_key) == file.file_id:
        return False
    st.session_state[seen_key] = file.file_id
    return True


def upload_block() -> None:
    """Upload a CSV/TXT point cloud; accepted data becomes the "Uploaded: ..." distribution."""
    st.subheader("Your own data")
    st.caption(
        f"A CSV or TXT file with two numeric columns (x, y), at most {MAX_UPLOAD_MB} MB and "
        f"{MAX_POINTS:,} points. It is centred and scaled like the built-in data and used as "
        "the empirical distribution; it stays in this session only."
    )
    file = st.file_uploader("Point cloud", type=["csv", "txt"], key="upload_file")
    if file is not None and _once("upload", file):
        st.session_state.pop(keys.UPLOAD_ERROR, None)
        try:
            _accept_upload(file.getvalue(), file.name)
        except ScorevizError as exc:
            st.session_state[keys.UPLOAD_ERROR] = (file.file_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - a short message, never a traceback
            log.exception("Unexpected error reading an upload")
            st.session_state[keys.UPLOAD_ERROR] = (file.file_id, _unexpected("file", exc))
    err = st.session_state.get(keys.UPLOAD_ERROR)
    if file is not None and err and err[0] == file.file_id:
        st.error(f"{escape(err[1], limit=600)} The previous dataset stays selected.")
    up = st.session_state.get(keys.UPLOAD)
    if up is not None:
        st.success(f"Loaded **{escape(up.name)}**: {escape(up.note)}")
        smoothing_block()


def _accept_upload(data: bytes, name: str) -> None:

    parsed = parse_point_cloud(data, name)
    h = select_bandwidth(parsed.points)
    st.session_state[keys.UPLOAD] = UploadedData(
        name=name,
        sha=parsed.sha,
        dist=reduce_components(parsed.points, h),
        n_points=int(len(parsed.points)),
        note=parsed.note,
        points=parsed.points,
        bandwidth=h,
        auto_bandwidth=h,
        raw_sha=parsed.sha,
    )
    st.session_state[keys.UPLOAD_H] = h
    if not keys.request_distribution("upload"):
        st.rerun()  # the sidebar (already drawn) now offers and selects "Uploaded: ..."


def _smoothing_key(raw_sha: str, h: float, auto: float) -> str:
    """The upload's distribution hash: the file's own for the chosen-from-data width, else a
    hash of (file, width), so caches and model ids tell the smoothings apart (16 hex digits)."""
    if h == auto:
        return raw_sha
    return hashlib.sha256(f"{raw_sha}:{h:.6g}".encode()).hexdigest()[:16]


def smoothing_block() -> None:
    """Choose the smoothing width h of the uploaded data's exact density, seeing the points
    over it: "exact" means exact for the points blurred by N(0, h^2 I)."""

    up = st.session_state.get(keys.UPLOAD)
    if up is None or up.points is None:
        return
    auto = up.auto_bandwidth
    options = smoothing_options(auto)
    h = st.select_slider(
        "Smoothing width h of the exact density",
        options,
        key=keys.UPLOAD_H,
        format_func=lambda v: f"{v:.3g}" + (" (chosen from the data)" if v == auto else ""),
        help="Each uploaded point becomes a Gaussian of width h; the exact score, denoiser and "
        "samplers are exact for that density. The default maximises the leave-one-out "
        "likelihood of the points: wide enough to fill gaps, thin enough to keep lines thin.",
    )
    if h != up.bandwidth:
        sha = _smoothing_key(up.raw_sha, h, auto)
        with friendly_errors("Smoothing the uploaded data"):
            dist = reduce_components(up.points, h)
            up = dataclasses.replace(up, sha=sha, dist=dist, bandwidth=h)
            st.session_state[keys.UPLOAD] = up
    merged = (
        f" Merged to {up.dist.n_components:,} Gaussians (at most {MAX_COMPONENTS:,}: every exact "
        "computation costs time in proportion)."
        if up.n_points > MAX_COMPONENTS
        else ""
    )
    st.caption(f"Your points over the exact density at h = {h:.3g}.{merged}")
    with friendly_errors("Drawing the uploaded data"):
        key = f"upload:{up.sha}"
        d = cache.density_at(Problem(key, up.dist, "vp_linear"), 0.0, 100)
        grid, density = d.grid, d.density
        pts = np.asarray(up.points)[:: max(1, len(up.points) // 3000)]
        half = float(np.abs(np.asarray(up.points)).max()) * 1.1
        fig = data_figure(
            pts,
            grid,
            density,
            (-half, half),
            height=380,
            title="Your points over the smoothed exact p₀",
            points_name="your points",
        )
        st.plotly_chart(fig, width="stretch", key="upload_smoothing")


def model_transfer_block() -> None:
    """Download the active model; upload a model file to add it to this session's models."""
    st.subheader("Export / import a model")

    sel = current_selection()
    if sel.model is not None:
        with friendly_errors("Exporting the model"):
            st.download_button(
                f"⬇ Download “{escape(sel.model_name)}”",
                data=_export(sel.model_name, sel.model),
                file_name=f"scoreviz-{sel.model.model_id}.safetensors",
                mime="application/octet-stream",
                key="model_download",
                on_click="ignore",
            )
    else:
        st.caption("Train a model to export it.")
    file = st.file_uploader("Import a model file", key="model_file")
    if file is not None and _once("model_file", file):
        st.session_state.pop(keys.IMPORT_ERROR, None)
        try:
            result = model_io.import_model(file.getvalue())
            add_model(f"imported · {_short(file.name)}", result)
            st.rerun()
        except ScorevizError as exc:
            st.session_state[keys.IMPORT_ERROR] = (file.file_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - a short message, never a traceback
            log.exception("Unexpected error importing a model file")
            st.session_state[keys.IMPORT_ERROR] = (file.file_id, _unexpected("model file", exc))
    err = st.session_state.get(keys.IMPORT_ERROR)
    if file is not None and err and err[0] == file.file_id:
        st.error(f"{escape(err[1], limit=600)} Your models are unchanged.")


def _unexpected(what: str, exc: Exception) -> str:
    return f"This {what} could not be read ({type(exc).__name__})."


def _short(name: str, limit: int = 60) -> str:
    """A file name cut to the Train form's name length (model names are shown in many places)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _export(name: str, result) -> bytes:
    """Model file bytes, memoised per model in the session (exports are not free)."""

    memo = st.session_state.setdefault(keys.EXPORT_MEMO, {})
    key = (name, result.model_id, len(result.history))
    if key not in memo:
        memo.clear()
        memo[key] = model_io.export_model(result)
    return memo[key]
