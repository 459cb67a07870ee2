"""Data you draw or type (`scoreviz.sketch`): strokes and words to points, the link code, the
content-addressed keys, and how links, configs and scenes take them. Oracles: the strokes' own
geometry (distance of each point to its polyline), the rendered glyph mask, exact arc lengths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoreviz import data_io, sketch
from scoreviz.errors import ConfigError, DataError
from scoreviz.scenes import load_scenes, scene_data
from scoreviz.training import TrainConfig, model_name, resolve_distribution
from scoreviz.ui import keys, links
from scoreviz.ui import sketch as ui_sketch

CANVAS = 340


def _circle(cx=170.0, cy=170.0, r=100.0, n=64) -> np.ndarray:
    a = np.linspace(0, 2 * math.pi, n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)


def _segment_distance(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance of each point (N, 2) to the polyline (K, 2), vectorised over both."""
    a, b = poly[:-1][None], poly[1:][None]
    d = b - a
    t = np.clip(((p[:, None] - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0, 1)
    return np.linalg.norm(p[:, None] - (a + t[..., None] * d), axis=-1).min(1)


def _fabric(strokes, **transform) -> dict:
    """Canvas JSON for strokes as Fabric's freehand brush writes them (M, Q through the
    midpoints, L), untransformed unless `transform` sets left/top/scale/angle."""
    objects = []
    for s in strokes:
        mids = (s[:-1] + s[1:]) / 2
        path = [["M", *s[0]]] + [["Q", *c, *m] for c, m in zip(s[:-1], mids, strict=True)]
        path.append(["L", *s[-1]])
        lo, hi = s.min(0), s.max(0)
        obj = {"type": "Path", "originX": "center", "originY": "center",
               "left": (lo[0] + hi[0]) / 2, "top": (lo[1] + hi[1]) / 2,
               "width": hi[0] - lo[0], "height": hi[1] - lo[1], "strokeWidth": 6,
               "path": [[c[0], *map(float, c[1:])] for c in path]}  # fmt: skip
        objects.append(obj | transform)
    return {"objects": objects}


# ----------------------------------------------------------------------------- strokes
def test_points_lie_on_the_strokes_evenly_and_count_exactly():
    line = np.array([[0.1, 0.1], [0.9, 0.1]])
    arc = _circle(0.5, 0.5, 0.3) / 1.0
    pts = sketch.strokes_to_points([line, arc], n=600)
    assert pts.shape == (600, 2)
    dist = np.minimum(_segment_distance(pts, line), _segment_distance(pts, arc))
    assert dist.max() < 1e-9
    # by arc length: the line (0.8 long) against the circle (2 pi 0.3, as a 64-gon)
    arc_len = float(np.hypot(*np.diff(arc, axis=0).T).sum())
    on_line = _segment_distance(pts, line) < 1e-9
    assert abs(on_line.sum() - 600 * 0.8 / (0.8 + arc_len)) <= 1
    xs = np.sort(pts[on_line, 0])
    np.testing.assert_allclose(np.diff(xs), 0.8 / on_line.sum(), rtol=1e-9)


def test_a_tap_is_a_disc_of_the_pen_width():
    dot = np.array([[0.3, 0.4]])
    line = np.array([[0.0, 0.0], [1.0, 0.0]])
    pts = sketch.strokes_to_points([dot, line], n=500)
    near = np.linalg.norm(pts - dot, axis=1) <= sketch.PEN_WIDTH / 2 + 1e-12
    # its share: a stroke TAP_WEIGHT long against the line's length (1)
    assert abs(near.sum() - 500 * sketch.TAP_WEIGHT / (1 + sketch.TAP_WEIGHT)) <= 1
    assert len(np.unique(np.round(pts[near], 12), axis=0)) == near.sum()  # no two alike


def test_points_are_deterministic_and_standardised():
    code = sketch.encode_strokes([_circle(), np.array([[60.0, 300], [280, 300]])], CANVAS, CANVAS)
    a, b = sketch.from_code(code), sketch.from_code(code)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.key == b.key and a.key.startswith("drawn:") and len(a.sha) == 16
    assert data_io.CUSTOM_KEY.fullmatch(a.key)
    np.testing.assert_allclose(a.points.mean(0), 0, atol=1e-12)
    assert math.isclose(math.sqrt((a.points**2).sum(1).mean() / 2), 1.0, rel_tol=1e-12)
    assert not a.points.flags.writeable
    other = sketch.from_code(sketch.encode_strokes([_circle(r=60)], CANVAS, CANVAS))
    assert other.key != a.key


def test_y_points_up():
    """The canvas' y runs down; the data's up: a stroke drawn at the top lands at large y."""
    top = np.array([[50.0, 20], [290, 20]])
    bottom = np.array([[150.0, 320], [190, 320]])
    sk = sketch.from_code(sketch.encode_strokes([top, bottom], CANVAS, CANVAS))
    upper = sk.points[:, 1] > 0
    assert np.ptp(sk.points[upper, 0]) > 3 * np.ptp(sk.points[~upper, 0])


def test_the_code_round_trips_within_its_quantisation():
    strokes = [_circle(), np.array([[10.0, 10], [330, 200], [40, 330]]), np.array([[200.0, 50]])]
    code = sketch.encode_strokes(strokes, CANVAS, CANVAS)
    assert sketch._CODE.fullmatch(code) and len(code) < 1000
    back = sketch.decode_strokes(code)
    assert len(back) == 3
    tol = (sketch.QUANT / 2000 + 1) / (sketch.QUANT - 1)  # simplification + rounding
    for orig, got in zip(strokes, back, strict=True):
        orig = orig / CANVAS
        assert _segment_distance(got, orig).max() <= tol if len(orig) > 1 else True
        if len(orig) > 1:
            assert _segment_distance(orig, got).max() <= tol
        else:
            assert np.abs(got - orig).max() <= tol


@pytest.mark.parametrize(
    "code",
    ["", "2AAAA", "1", "1!!!!", "1AAAA", "1____", "1" + "A" * 9000, "1gICAgICAgICAgIA"],
)
def test_a_damaged_code_is_refused_with_a_message(code):
    with pytest.raises(DataError, match="damaged"):
        sketch.decode_strokes(code)


def test_a_shape_sample_lies_on_the_strokes_in_the_points_frame():
    line, dot = np.array([[40.0, 300], [300, 300]]), np.array([[170.0, 60]])
    code = sketch.encode_strokes([line, dot], CANVAS, CANVAS)
    sk = sketch.from_code(code)
    x = sketch.shape_sample(code, 4000, seed=1)
    assert x.shape == (4000, 2)
    np.testing.assert_array_equal(x, sketch.shape_sample(code, 4000, seed=1))
    # in random order: the first hundred are a sample too (not one stroke's points)
    assert 0 < np.mean(x[:100, 1] > x[:, 1].min() + 1e-9) < 0.5
    # the points' frame: the evenly spaced points and the random ones share their line and dot
    on_line = np.abs(x[:, 1] - sk.points[:, 1].min()) < 1e-9
    tap = sk.points[np.argmax(sk.points[:, 1])]
    radius = np.linalg.norm(x[~on_line] - tap, axis=1).max()
    assert radius < 0.2 and (on_line | (np.linalg.norm(x - tap, axis=1) <= radius)).all()
    share = sketch.TAP_WEIGHT / (sketch.TAP_WEIGHT + 260 / CANVAS)
    assert abs(np.mean(~on_line) - share) < 4 * math.sqrt(share / 4000)
    assert np.ptp(x[on_line, 0]) == pytest.approx(
        np.ptp(sk.points[sk.points[:, 1] < 0, 0]), rel=0.01
    )


def test_nothing_drawn_and_a_smudge_are_refused():
    with pytest.raises(DataError, match="Nothing is drawn"):
        sketch.encode_strokes([], CANVAS, CANVAS)
    with pytest.raises(DataError, match="Nothing is drawn"):
        sketch.from_canvas({"objects": [{"type": "rect"}]}, CANVAS, CANVAS)
    tiny = sketch.encode_strokes([np.array([[100.0, 100], [101, 101]])], CANVAS, CANVAS)
    with pytest.raises(DataError, match="too small"):
        sketch.from_code(tiny)


def test_canvas_paths_become_their_strokes():
    """Fabric's freehand path (Béziers through the midpoints) passes through the mouse points'
    midpoints and stays within the polygon of the mouse points."""
    mouse = _circle(n=40)
    (got,) = sketch.canvas_strokes(_fabric([mouse]))
    mids = (mouse[:-1] + mouse[1:]) / 2
    assert np.linalg.norm(got[:, None] - mids[None], axis=-1).min(0).max() < 1e-9
    assert _segment_distance(got, mouse).max() < 1.0  # a Bézier bulges < 1 px here


def test_a_moved_scaled_rotated_path_is_placed_by_its_transform():
    line = np.array([[100.0, 100], [200, 100]])
    # rotated 90 degrees and scaled 2x about its centre (150, 100), then moved to (170, 170)
    (got,) = sketch.canvas_strokes(_fabric([line], left=170, top=170, scaleX=2, scaleY=2, angle=90))
    np.testing.assert_allclose(got[0], [170, 70], atol=1e-9)
    np.testing.assert_allclose(got[-1], [170, 270], atol=1e-9)


def test_a_drawing_in_use_goes_back_on_the_canvas_with_the_same_code():
    """A reopened link puts the drawing's strokes on the canvas (`ui.sketch._start`): read back,
    they give the same code, so the drawing on screen is the data in use."""
    strokes = [_circle(), np.array([[125.0, 130]]), np.array([[20.0, 300], [320, 310]])]
    code = sketch.encode_strokes(strokes, CANVAS, CANVAS)
    drawing = {"objects": [ui_sketch._fabric_path(s * CANVAS) for s in sketch.decode_strokes(code)]}
    assert sketch.encode_strokes(sketch.canvas_strokes(drawing), CANVAS, CANVAS) == code


def test_to_distribution_is_the_uploads_path():
    sk = sketch.from_code(sketch.encode_strokes([_circle()], CANVAS, CANVAS))
    h, mix = sketch.to_distribution(sk)
    assert h == data_io.select_bandwidth(sk.points)
    assert mix.n_components == sketch.N_DRAWN
    assert 0 < h < 0.1  # a thin line keeps its thickness: about the points' spacing


# ----------------------------------------------------------------------------- words
def test_word_points_lie_inside_the_glyphs():
    mask = sketch.glyph_mask("Hi5")
    pts = sketch.word_to_points("Hi5", n=2000)
    assert pts.shape == (2000, 2)
    col, row = np.floor(pts).astype(int).T
    assert mask[row, col].all()
    # every glyph gets points: columns of ink split into three runs, each hit
    ink_cols = np.flatnonzero(mask.any(0))
    runs = np.split(ink_cols, np.flatnonzero(np.diff(ink_cols) > 1) + 1)
    assert len(runs) >= 3
    for r in runs:
        assert ((col >= r[0]) & (col <= r[-1])).sum() > 50


def test_word_points_are_deterministic_and_the_word_is_the_key():
    a, b = sketch.from_word("  Hello   World "), sketch.from_word("Hello World")
    np.testing.assert_array_equal(a.points, b.points)
    assert a.key == b.key and a.key.startswith("typed:") and a.source == "Hello World"
    assert a.n_points == sketch.N_TYPED
    assert sketch.from_word("Hellp").key != a.key
    assert np.ptp(a.points[:, 0]) > 3 * np.ptp(a.points[:, 1])  # a word is wide


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Type a word"),
        ("   ", "Type a word"),
        ("abcdefghijklm", "13 characters long"),
        ("héllo", "cannot draw 'é'"),
        ("a\x00b", "U\\+0000"),
        ("日本", "cannot draw"),
        ("😀", "cannot draw"),
    ],
)
def test_a_bad_word_gets_a_message(text, message):
    with pytest.raises(DataError, match=message):
        sketch.from_word(text)


# ----------------------------------------------------------------------------- keys
def test_custom_keys_configs_and_model_files():
    key = sketch.from_word("Hi").key
    assert data_io.is_custom_key(key) and data_io.is_shared_key(key)
    assert data_io.is_custom_key("upload:0123456789abcdef")
    assert not data_io.is_shared_key("upload:0123456789abcdef")
    assert not data_io.is_custom_key("two_moons")
    config = TrainConfig(distribution=key)
    assert model_name(config) == f"default · typed {key[6:10]} · vp_linear · seed 0"
    with pytest.raises(ConfigError, match="pass the data"):
        resolve_distribution(config, None)
    with pytest.raises(ConfigError):
        TrainConfig(distribution="drawing:0123")


def test_links_carry_a_word_and_a_drawing():
    code = sketch.encode_strokes([_circle()], CANVAS, CANVAS)
    ss: dict = {}
    bad = links.apply({"data": "drawn", "drawing": code, "word": "Hi"}, "views/train.py", ss)
    assert bad == []
    assert ss[keys.DISTRIBUTION] == "drawn" and ss[keys.DRAWING] == code and ss[keys.WORD] == "Hi"
    out = links.url_values("views/train.py", ss | {keys.MODELS: {}})
    assert out["data"] == "drawn" and out["drawing"] == code and out["word"] == "Hi"
    bad = links.apply({"drawing": code[:-3] + "!!!", "word": "héllo"}, "views/train.py", {})
    assert sorted(bad) == ["drawing", "word"]
    assert "drawing" not in links.url_values("views/train.py", {keys.DRAWING: None})


def test_the_draw_scene_trains_on_its_drawing():
    scene = load_scenes()["draw_train_sample"]
    own = sketch.from_code(scene.settings_dict["drawing"])
    assert scene.train and all(c.distribution == own.key for c in scene.train)
    assert scene.dist is not None and scene.dist.n_components == own.n_points
    assert scene_data(own.key) is scene.dist
    assert scene_data("two_moons") is None
