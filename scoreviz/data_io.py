"""Uploaded point clouds: bytes of a CSV/TXT file -> a standardised (N, 2) array -> a mixture.

`parse_point_cloud(data, name)` accepts two numeric columns (x, y) separated by commas,
semicolons, tabs or spaces, an optional header line, `#` comment lines and blank lines. Rows with
a missing, NaN or infinite value are dropped and counted. The points are always centred and
scaled to unit spread sqrt(tr Cov / 2) = 1 (the app's axes assume it); the note mentions it only
when that changed the picture (original spread outside [0.2, 5] or centre far from 0).
`to_distribution(parsed)` turns the result into the empirical `GaussianMixture`, smoothed by a
default bandwidth > 0 so that densities and scores exist at noise level 0.

Encoding policy: UTF-8 with or without a byte-order mark; UTF-16 and UTF-32 with a BOM (Excel's
"Unicode text" is UTF-16) or without one, recognised by their NUL bytes (ASCII digits in UTF-16
have a NUL in every other byte, in UTF-32 three NULs in every four). Anything else is refused
with a message that asks for UTF-8. We do not guess a legacy encoding: Latin-1 decodes any byte
string, so guessing would turn a binary or mangled file into silently misread numbers; and since
numbers are ASCII, the only text this refuses is a header with non-ASCII letters saved in a
legacy encoding, which one "Save as CSV UTF-8" fixes.
With `;` as separator (or tabs/spaces), a decimal comma ("1,5") is read as a decimal point.

Every failure raises `DataError` with a message for the person who uploaded the file: what is
wrong, where (line and value), and what to do. No Streamlit here: the UI shows the message.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from scoreviz.errors import DataError
from scoreviz.mixture import GaussianMixture, empirical

MAX_BYTES = 5_000_000  # 5 MB
MAX_POINTS = 20_000
# A row of two numbers is short; the csv module refuses fields over 131,072 characters (_csv.Error).
MAX_LINE_CHARS = 1_000
SPREAD_NOTE_RANGE = (0.2, 5.0)
# The exact mixture of an upload has at most this many components (`reduce_components`): every
# page's exact density, score and sampler cost is proportional to it. 1,000 rather than 2,000:
# on 20,000 points of thin curves and blobs (benchmarks/upload_pages.py) the held-out
# log-likelihood drops by 0.02 nats (500: 0.15), and every exact computation halves (the exact
# sampler at the defaults, 1,000 particles x 200 steps, ~2.6 s -> ~1.3 s on the idle 2-core box).
MAX_COMPONENTS = 1_000
KMEANS_STEPS = 2
# Bandwidth selection: widths tried (at unit spread), query points, distance bins, pairs a chunk
MIN_CV_POINTS = 20
BANDWIDTH_GRID = tuple(float(h) for h in np.geomspace(0.003, 1.0, 40))
CV_QUERIES = 600
_CV_BINS = 2_400
_CV_LOG_D2 = (math.log(1e-10), math.log(1e2))  # range of log squared distances binned
_CV_PAIRS = 2_000_000  # original spread outside this -> the note says "standardised"

_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")
_MAGIC = {
    b"PK\x03\x04": "a zip archive or an Excel .xlsx workbook",
    b"\xd0\xcf\x11\xe0": "an Excel .xls / old Office document",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"\x93NUMPY": "a NumPy .npy file",
}
_HOW_TO_SAVE = "Upload a CSV or TXT file with two numeric columns (in Excel: Save As → CSV UTF-8)."
# Data keys that are no registry name: "<source>:<16 hex digits>", the data passed along (dist=).
# An upload's hash is of its file (private to its session: never shared); drawn and typed data
# (`scoreviz.sketch`) are content addresses of points a link rebuilds, so their models are shared.
CUSTOM_SOURCES = ("upload", "drawn", "typed")
SHARED_SOURCES = ("drawn", "typed")
CUSTOM_KEY = re.compile(r"(?:upload|drawn|typed):[0-9a-f]{16}")


def is_custom_key(key: str) -> bool:
    """Whether a data key names data the caller passes along (an upload, a drawing, a word)."""
    return str(key).startswith(tuple(f"{s}:" for s in CUSTOM_SOURCES))


def is_shared_key(key: str) -> bool:
    """Whether a data key is a content address that links carry (drawn or typed data)."""
    return str(key).startswith(tuple(f"{s}:" for s in SHARED_SOURCES))


@dataclass(frozen=True, eq=False)
class ParsedPoints:
    """A parsed upload. `points` (N, 2) float64 (read-only) has mean 0 and unit spread;
    original = points * scale + centre."""

    points: np.ndarray
    n_dropped: int  # rows dropped for missing / NaN / inf values
    was_standardised: bool  # centring/scaling changed the picture (and the note says so)
    note: str  # human summary, e.g. "1,203 points; 4 rows with NaN/inf dropped; standardised ..."
    sha: str  # sha256 of the raw bytes, first 16 hex digits (identifies the data in model ids)
    centre: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])


def parse_point_cloud(data: bytes, name: str = "upload") -> ParsedPoints:
    """Parse an uploaded CSV/TXT file into standardised 2D points; DataError if unusable."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = bytes(data)
    label = _label(name)
    _check_size(data, label)
    text = _decode(data, label)
    raw, n_dropped, header = _parse_text(text, label)
    points, centre, scale = _standardise(raw, label)
    moved = not (SPREAD_NOTE_RANGE[0] <= scale <= SPREAD_NOTE_RANGE[1])
    off_centre = math.hypot(*centre) > max(scale, 0.5)  # the cloud would sit off the axes
    points.setflags(write=False)
    return ParsedPoints(
        points=points,
        n_dropped=n_dropped,
        was_standardised=moved or off_centre,
        note=_note(len(points), n_dropped, header, centre, scale, moved, off_centre),
        sha=hashlib.sha256(data).hexdigest()[:16],
        centre=centre,
        scale=scale,
    )


def default_bandwidth(n_points: int) -> float:
    """Half the normal-reference (Scott/Silverman) rule in 2D at unit spread: 0.5 n^(-1/6).

    Only a fallback now (fewer than MIN_CV_POINTS points): it ignores the data's shape, and a
    thin outline of a few thousand points became a blob under it (0.11 at 8,000 points against
    structure of ~0.01). `select_bandwidth` looks at the points.
    """
    return 0.5 * max(int(n_points), 1) ** (-1 / 6)


def _distance_histogram(x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Counts (m, _CV_BINS) of the squared distances from each query point (indices into x) to
    every other point of x, in bins of equal width in log d^2 from _CV_LOG_D2[0] (smaller ones go
    to the first bin, larger to the last). Exact duplicates are left out."""
    m, n = len(query), len(x)
    lo, hi = _CV_LOG_D2
    scale = _CV_BINS / (hi - lo)
    counts = torch.zeros(m * _CV_BINS, dtype=torch.float64)
    chunk = max(1, _CV_PAIRS // n)
    for i in range(0, m, chunk):
        rows = query[i : i + chunk]
        d2 = torch.cdist(x[rows], x).square_()
        d2[torch.arange(len(rows)), rows] = 0.0  # the point itself
        keep = d2 > 1e-12
        b = d2.log_().sub_(lo).mul_(scale).clamp_(0, _CV_BINS - 1).long()
        flat = (b + _CV_BINS * torch.arange(i, i + len(rows))[:, None])[keep]
        counts += torch.bincount(flat, minlength=m * _CV_BINS).to(torch.float64)
    return counts.reshape(m, _CV_BINS)


def smoothing_options(auto: float, below: int = 3, above: int = 4) -> list[float]:
    """The smoothing slider's stops: `auto` (the width chosen from the data, exactly as given:
    the app tells it apart by equality) and auto * 2^k for k = -below..above, k != 0, rounded to
    6 digits; ascending, no two alike. (Rounding auto * 2^0 as well gave a second stop that read
    the same as auto, "0.0169" twice, with two keys of its own.)"""
    scaled = {round(auto * 2.0**k, 6) for k in range(-below, above + 1) if k != 0}
    return sorted({auto} | {v for v in scaled if not math.isclose(v, auto, rel_tol=1e-3)})


def select_bandwidth(points: np.ndarray, seed: int = 0) -> float:
    """The smoothing width h that best predicts each point from the others: leave-one-out
    likelihood cross-validation over BANDWIDTH_GRID (Duin 1976; Silverman 1986, 3.4.4).

        LOO(h) = mean_i log( 1/(n-1) sum_{j != i} N(x_i; x_j, h^2 I) )

    averaged over up to CV_QUERIES points i (a fixed random subset), against all n points j.
    The distances are binned once (log-spaced, 1.5 % wide in d), so every h of the grid costs
    only a matrix product; the best grid value is refined by a parabola in log h. A thin outline
    gets about its own thickness, one Gaussian blob about the normal-reference width.
    Vectorised and chunked: ~0.3 s at 20,000 points on one core. Points at unit spread.
    """
    x = torch.tensor(np.asarray(points), dtype=torch.float32).reshape(-1, 2)
    n = len(x)
    if n < MIN_CV_POINTS:
        return default_bandwidth(n)
    gen = torch.Generator().manual_seed(seed)
    query = torch.randperm(n, generator=gen)[: min(n, CV_QUERIES)]
    counts = _distance_histogram(x, query)
    lo, hi = _CV_LOG_D2
    d2 = torch.exp(lo + (torch.arange(_CV_BINS, dtype=torch.float64) + 0.5) * (hi - lo) / _CV_BINS)
    h = torch.as_tensor(BANDWIDTH_GRID, dtype=torch.float64)
    kernel = torch.exp(-d2[:, None] / (2 * h**2)) / (2 * math.pi * h**2)  # (B, H)
    dens = counts @ kernel / (n - 1)
    loo = torch.log(dens.clamp_min(1e-300)).mean(0)  # (H,)
    k = int(loo.argmax())
    log_h = math.log(BANDWIDTH_GRID[k])
    if 0 < k < len(BANDWIDTH_GRID) - 1:  # vertex of the parabola through the three values
        a, b, c = (float(v) for v in loo[k - 1 : k + 2])
        step = math.log(BANDWIDTH_GRID[k + 1] / BANDWIDTH_GRID[k])
        denom = a - 2 * b + c
        if denom < 0:
            log_h += 0.5 * step * (a - c) / denom
    return float(math.exp(log_h))


def reduce_components(
    points: np.ndarray, bandwidth: float, max_components: int = MAX_COMPONENTS, seed: int = 0
) -> GaussianMixture:
    """The smoothed empirical distribution with at most `max_components` Gaussians.

    Up to the bound: one Gaussian of width h per point. Beyond it: k-means (a few Lloyd steps
    from a random subset) merges the points into clusters, each one Gaussian at the cluster mean
    with weight = its size and width sqrt(h^2 + its mean squared spread per coordinate), so the
    mixture keeps the cloud's mean, shape and mass. Why: every exact density, score and sampler
    step costs O(points x components); 20,000 components made every page take 17-57 s.
    """
    x = torch.tensor(np.asarray(points), dtype=torch.float64).reshape(-1, 2)
    if len(x) <= max_components:
        return empirical(x, bandwidth)
    gen = torch.Generator().manual_seed(seed)
    centres = x[torch.randperm(len(x), generator=gen)[:max_components]].clone()
    for _ in range(KMEANS_STEPS):  # Lloyd: assign, then move each centre to its points' mean
        label = _nearest(x, centres)
        size = torch.bincount(label, minlength=max_components).to(torch.float64)
        sums = torch.zeros_like(centres).index_add_(0, label, x)
        filled = size > 0
        centres[filled] = sums[filled] / size[filled, None]
    # the last assignment's clusters: their means are the centres, so the mixture's mean and
    # covariance equal the smoothed cloud's exactly
    spread = torch.zeros(max_components, dtype=torch.float64).index_add_(
        0, label, (x - centres[label]).square().sum(1) / 2
    )
    var = spread[filled] / size[filled]
    return GaussianMixture(centres[filled], (bandwidth**2 + var).sqrt(), size[filled])


def _nearest(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre for each point (N,), chunked."""
    chunk = max(1, _CV_PAIRS // len(centres))
    c32 = centres.float()
    return torch.cat(
        [torch.cdist(x[i : i + chunk].float(), c32).argmin(1) for i in range(0, len(x), chunk)]
    )


def to_distribution(parsed: ParsedPoints, bandwidth: float | None = None) -> GaussianMixture:
    """The empirical distribution of the parsed points, each smoothed by N(0, bandwidth^2 I),
    merged to at most MAX_COMPONENTS Gaussians (`reduce_components`).

    bandwidth None -> `select_bandwidth(points)` (> 0, so log-density and score exist at sigma 0).
    """
    if bandwidth is None:
        bandwidth = select_bandwidth(parsed.points)
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise DataError(f"The smoothing bandwidth must be a number > 0, got {bandwidth}.")
    return reduce_components(parsed.points, float(bandwidth))


# --------------------------------------------------------------------------- bytes -> text
def _label(name: str) -> str:
    clean = "".join(ch for ch in str(name) if ch.isprintable()).strip() or "upload"
    return repr(clean if len(clean) <= 60 else clean[:57] + "...")


def _check_size(data: bytes, label: str) -> None:
    if not data.strip():
        what = "empty (0 bytes)" if not data else "empty (only blank space)"
        raise DataError(f"The file {label} is {what}. {_HOW_TO_SAVE}")
    if len(data) > MAX_BYTES:
        raise DataError(
            f"The file {label} is {len(data) / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:g} MB "
            f"(and {MAX_POINTS:,} points). Upload a random subset of the rows."
        )


def _decode(data: bytes, label: str) -> str:
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            raise DataError(f"The file {label} looks like {kind}, not a text file. {_HOW_TO_SAVE}")
    wide = _wide_encoding(data)
    if wide is not None:  # UTF-16/32: NUL bytes are expected
        try:
            return data.decode(wide).removeprefix("\ufeff")
        except UnicodeDecodeError:
            name = wide.upper().replace("-LE", "").replace("-BE", "")
            raise DataError(_not_utf8(label, f"it looks like {name} but does not decode")) from None
    if b"\x00" in data or _control_share(data) > 0.05:
        raise DataError(f"The file {label} looks like a binary file, not text. {_HOW_TO_SAVE}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        where = f"byte 0x{data[err.start]:02X} on line {line} is not valid UTF-8"
        raise DataError(_not_utf8(label, where)) from None


def _wide_encoding(data: bytes) -> str | None:
    """ "utf-32"/"utf-16" for a BOM (UTF-32's first: UTF-32-LE's BOM starts like UTF-16-LE's),
    "utf-32-le"/"-be", "utf-16-le"/"-be" for BOM-less text whose NUL bytes sit where ASCII
    characters put them; else None."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = data[: 4096 - 4096 % 4]
    if len(head) < 4 or len(data) % 2:
        return None
    zero = [head[i::4].count(0) / len(head[i::4]) for i in range(4)]
    if len(data) % 4 == 0:
        if min(zero[1:]) > 0.95 and zero[0] < 0.05:
            return "utf-32-le"
        if min(zero[:3]) > 0.95 and zero[3] < 0.05:
            return "utf-32-be"
    even, odd = (zero[0] + zero[2]) / 2, (zero[1] + zero[3]) / 2
    if odd > 0.95 and even < 0.05:
        return "utf-16-le"
    if even > 0.95 and odd < 0.05:
        return "utf-16-be"
    return None


def _control_share(data: bytes) -> float:
    """Share of ASCII control bytes other than tab/newline/CR/FF/VT in the first 8 KB."""
    head = data[:8192]
    return sum(b < 32 and b not in b"\t\n\r\x0b\x0c" for b in head) / max(len(head), 1)


def _not_utf8(label: str, where: str) -> str:
    return (
        f"The file {label} is not UTF-8 text ({where}). Save it with UTF-8 encoding and upload "
        "it again (in Excel: Save As → CSV UTF-8; in a text editor: Encoding → UTF-8)."
    )


# --------------------------------------------------------------------------- text -> rows
def _content_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) for non-blank, non-comment lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [
        (i, ln) for i, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith("#")
    ]


def _split(line: str, delim: str | None) -> list[str]:
    if delim is None:
        cells = line.split()
    else:
        try:  # lines are cut to MAX_LINE_CHARS first, below the csv module's field limit
            cells = next(csv.reader([line], delimiter=delim, skipinitialspace=True))
        except csv.Error:
            cells = line.split(delim)
    cells = [c.strip().strip("\"'").strip() for c in cells]
    while len(cells) > 2 and cells[-1] == "":  # tolerate a trailing separator: "1,2,"
        cells.pop()
    return cells


def _pick_delimiter(lines: list[tuple[int, str]]) -> str | None:
    """The first of ';', tab, ',', whitespace that splits the sample lines into exactly 2 cells
    (else the first one present, so that the error message counts columns sensibly). Tab comes
    before ',' so that "1,5<tab>2,5" (decimal commas) reads as two numbers."""
    sample = [ln for _, ln in (lines[1:21] if len(lines) > 1 else lines)]
    present = [d for d in (";", "\t", ",") if any(d in ln for ln in sample)] + [None]
    for delim in present:
        if all(len(_split(ln, delim)) == 2 for ln in sample):
            return delim
    return present[0]


def _number(cell: str, decimal_comma: bool) -> float | None:
    """float value of a cell; NaN for a missing value; None if it is not a number."""
    c = cell.replace("\u2212", "-")  # typographic minus sign
    if c.lower() in _MISSING:
        return math.nan
    try:
        return float(c)
    except ValueError:
        if decimal_comma and _DECIMAL_COMMA.fullmatch(c):
            return float(c.replace(",", "."))
        return None


def _parse_text(text: str, label: str) -> tuple[np.ndarray, int, str | None]:
    """Rows -> (finite (N, 2) array, number of dropped rows, header line or None)."""
    lines = _content_lines(text)
    for line_no, line in lines:
        if len(line) > MAX_LINE_CHARS:
            raise DataError(
                f"Line {line_no} of {label} is {len(line):,} characters long; a row holds two "
                f"numbers (at most {MAX_LINE_CHARS:,} characters). {_HOW_TO_SAVE}"
            )
    if not lines:
        raise DataError(
            f"The file {label} has no data: only blank or comment lines. {_HOW_TO_SAVE}"
        )
    delim = _pick_delimiter(lines)
    header = None
    first = _split(lines[0][1], delim)
    if all(_number(c, delim != ",") is None for c in first):
        header = lines[0][1].strip()
        lines = lines[1:]
        if not lines:
            raise DataError(f"The file {label} has a header line but no data rows below it.")
    values = np.empty((len(lines), 2))
    n_ok = 0
    for row, (line_no, line) in enumerate(lines):
        values[row] = x, y = _parse_row(line, line_no, delim, label)
        n_ok += math.isfinite(x) and math.isfinite(y)
        if n_ok > MAX_POINTS:  # stop early: a 5 MB file can hold a million rows
            raise DataError(
                f"The file {label} has more than {MAX_POINTS:,} points ({len(lines):,} data "
                f"rows); the limit is {MAX_POINTS:,} points. Upload a random subset of the rows."
            )
    finite = np.isfinite(values).all(1)
    return values[finite], int((~finite).sum()), header


def _parse_row(line: str, line_no: int, delim: str | None, label: str) -> tuple[float, float]:
    cells = _split(line, delim)
    if len(cells) != 2:
        shown = line.strip() if len(line.strip()) <= 60 else line.strip()[:57] + "..."
        raise DataError(
            f"Line {line_no} of {label} has {len(cells)} column{'s' * (len(cells) != 1)} "
            f"({shown!r}); expected exactly 2 (x and y), separated by a comma, semicolon, tab or "
            "spaces."
        )
    out = []
    for cell in cells:
        v = _number(cell, delim != ",")
        if v is None:
            shown = cell if len(cell) <= 30 else cell[:27] + "..."
            raise DataError(
                f"Line {line_no} of {label}: {shown!r} is not a number. Every row must hold two "
                "numbers (x, y); only the first line may be a header."
            )
        out.append(v)
    return out[0], out[1]


# --------------------------------------------------------------------------- array -> points
def _standardise(raw: np.ndarray, label: str) -> tuple[np.ndarray, tuple[float, float], float]:
    """Centre and scale to sqrt(tr Cov / 2) = 1; computed on raw / max|raw| so 1e300 can't overflow.

    Returns (points, original centre, original spread)."""
    n = len(raw)
    if n == 0:
        raise DataError(
            f"The file {label} has no usable rows: every row has a missing, NaN or infinite value."
        )
    if n == 1:
        raise DataError(
            f"The file {label} has only 1 usable point; a distribution needs at least 2 "
            "different points."
        )
    s0 = float(np.abs(raw).max())
    q = raw / s0 if s0 > 0 else raw
    c = q.mean(0)
    d = q - c
    spread = math.sqrt(float((d**2).sum(1).mean()) / 2)
    if spread <= 1e-12:  # relative to the largest coordinate: only rounding noise is left
        x, y = raw[0]
        raise DataError(
            f"All {n:,} points in {label} are (nearly) identical, at ({x:.6g}, {y:.6g}); "
            "a distribution needs points that differ."
        )
    scale = spread * s0 if s0 > 0 else spread
    centre = (float(c[0] * s0), float(c[1] * s0)) if s0 > 0 else (0.0, 0.0)
    return d / spread, centre, scale


def _fmt(v: float) -> str:
    """Short number: 1.2e6, 0.003, 42."""
    s = f"{v:.2g}"
    return s.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _note(n, n_dropped, header, centre, scale, moved, off_centre) -> str:
    parts = [f"{n:,} points"]
    if header is not None:
        parts.append("header line skipped")
    if n_dropped:
        rows = "row" if n_dropped == 1 else "rows"
        parts.append(f"{n_dropped:,} {rows} with missing/NaN/inf values dropped")
    if moved:
        parts.append(f"standardised (original spread {_fmt(scale)})")
    if off_centre:
        parts.append(f"centred (original centre ({_fmt(centre[0])}, {_fmt(centre[1])}))")
    return "; ".join(parts)
