"""scoreviz.text.escape: user text shows literally in markdown, HTML and Plotly text.

Oracles: `readable` (html.unescape, joiners dropped) gives the text back (what a reader sees),
the escaped text holds none of the characters that start markup, and the decoded text matches
none of remark-gfm's autolink regexes. Figure builders that take users' names are fed payloads and
their titles / legend texts must hold no raw tag.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from scoreviz.text import escape, readable

PAYLOADS = [
    '<a href="http://example.com/x">click</a>',
    "<b>bold</b><br>line two<img src=http://example.com/p.png>",
    "![t](http://example.com/t.png) [link](http://example.com) `code` **b** _i_",
    ":material/home: :red[red] $x^2$ # head - item 1. item > quote | a | ~~s~~",
    "www.example.com http://example.com/ mail@example.com %{x} &lt;a&gt; \\*",
]
MARKUP = set("<>[]()!`*_~:$#&|\\{}@.+-^")


@pytest.mark.parametrize("text", PAYLOADS)
def test_escaped_text_has_no_markup_and_reads_back(text):
    out = escape(text)
    assert not MARKUP & set(out.replace("&#", "").replace(";", "").replace("&", ""))
    assert readable(out) == text


# remark-gfm's autolink literals (mdast-util-gfm-autolink-literal, as bundled by Streamlit 1.67)
# run on the *decoded* text of each text node, so character references do not stop them.
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.I | re.A)
GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.A)
SHORTCODE = re.compile(r":[\w+-]+:", re.A)  # emoji short codes, also on decoded text


@pytest.mark.parametrize("text", [*PAYLOADS, "WWW.example.org x:smile: https://a.b/c"])
def test_decoded_text_forms_no_autolink_literal_or_shortcode(text):
    shown = html.unescape(escape(text))  # what remark-gfm's text transform sees
    for pattern in (GFM_URL, GFM_EMAIL, SHORTCODE):
        assert not pattern.search(shown), (pattern.pattern, shown)


def test_controls_newlines_and_bidi_overrides():
    assert escape("a\nb\r\nc\td\x00e") == "a b  c d e"
    assert escape("abc\u202edef\u2066") == "abcdef"
    assert escape("x" * 300, limit=10) == "x" * 9 + "…"
    assert escape("λ = σ², a; b? 'q' \"d\" 5%") == "λ = σ², a; b? 'q' \"d\" 5%"  # inert: kept


def test_loss_curve_title_with_a_payload_name_has_no_raw_tag():
    from scoreviz.figures.training import loss_curve_figure

    hist = pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5], "elapsed": [0.1, 0.2]})
    for name in PAYLOADS:
        fig = loss_curve_figure(hist, title=f"Training loss of “{escape(name)}”")
        title = fig.layout.title.text
        assert "<" not in title and "[" not in title
        assert readable(title) == f"Training loss of “{name}”"


def test_dae_figures_escape_model_names_in_legends():
    from scoreviz.analysis import Reconstruction
    from scoreviz.figures.dae import dae_reconstruction_figure, reconstruction_error_figure

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5, 2))
    names = PAYLOADS[:3]
    rec = Reconstruction(
        sigma=0.5, t=0.3, alpha=0.9, x0=pts, x_t=pts, recon={n: pts for n in names}
    )  # fmt: skip
    fig = dae_reconstruction_figure([rec], {n: "learned" for n in names})
    sigma = np.array([0.1, 1.0])
    df = pd.DataFrame(
        {"sigma": sigma, "t": sigma, "alpha": [1.0, 0.5], "trace_cov": [1.0, 1.0],
         "mmse": [0.1, 0.5], **{n: [0.2, 0.6] for n in names}}
    )  # fmt: skip
    fig2 = reconstruction_error_figure(df, {n: "dae" for n in names}, {names[0]: 0.5})
    texts = [t.name or "" for t in (*fig.data, *fig2.data)]
    assert any("click" in t for t in texts)
    for t in texts:
        assert "<" not in t and "](" not in t and "http:" not in t, t
