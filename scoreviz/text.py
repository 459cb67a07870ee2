"""User text shown safely: the one escaping helper for markdown, HTML and Plotly text.

File names, model names, a model file's distribution and CSV cells quoted in error messages are
typed by users, or arrive inside a file another student shared. Streamlit renders st.markdown,
st.caption, st.error/warning/success/info, progress texts and button labels as GitHub markdown
(links, images that the browser fetches, backticks, $LaTeX$, :material/icon: and :red[...]
directives, raw HTML shown or dropped); Plotly renders <a href>, <b>, <br> in titles, legends
and hover labels. Every such string goes through `escape` first:

    st.caption(f"Model “{escape(name)}”")          # markdown
    loss_curve_figure(hist, title=f"Loss of “{escape(name)}”")   # Plotly text

`escape` replaces every ASCII punctuation character that can start markup by its numeric
character reference (`<` -> `&#60;`, `[` -> `&#91;`, `.` -> `&#46;` against "1." lists) and
keeps the inert ones (`, ; ? ' " % = /`: within one line they start nothing in
markdown, HTML text or Plotly text, and error messages stay readable). Line breaks and other
control characters become spaces; bidirectional overrides are dropped. Both renderers decode a
reference only into literal text, after the markup has been recognised (CommonMark: a character
reference never starts markup; Plotly decodes entities in the text between tags), so the reader
sees exactly the characters typed and nothing else happens: no element, no link, no request.
References alone do not stop GFM autolink literals: Streamlit's remark-gfm finds `http://…`,
`www.…` and `name@host.tld` in the *decoded* text of every text node (a regex over the parsed
tree), so a file name "![t](http://example.com/t.png)" still became a link. `escape` therefore
puts an invisible WORD JOINER (U+2060) before every `:` and `@` and between "www" and "." :
none of those regexes matches across it, nor do emoji short codes (`:smile:`). The reader sees
the same characters; a copied name carries the invisible joiners (`readable` drops them).
Two places need no escaping and must not get it (they would show `&#60;`): plain-text widgets
(select box options, dataframe cells, download file names) and code spans (backticks); nor HTML
attributes, where quotes matter (the app writes none).
"""

from __future__ import annotations

import html
import re
import string
import unicodedata

_INERT = ",;?'\"%=/"
_PUNCTUATION = {ord(c): f"&#{ord(c)};" for c in string.punctuation if c not in _INERT}
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
JOINER = "\u2060"  # WORD JOINER: zero width, no break; splits autolink literals
_AUTOLINK_BREAKS = re.compile(r"(?=[:@])|(?i:(?<=www)(?=\.))")


def escape(text: object, limit: int | None = 200) -> str:
    """`text` as a string that markdown, HTML and Plotly all show literally.

    Longer than `limit` characters (None: no limit): cut, with "…" at the end.
    """
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    s = "".join(_clean(ch) for ch in s)
    s = _AUTOLINK_BREAKS.sub(JOINER, s)
    return s.translate(_PUNCTUATION)


def code_span(text: object, limit: int | None = 200) -> str:
    """`text` as one markdown code span: shown literally (no markup, link, image, math, emoji
    or directive is recognised inside a code span) and kept verbatim in the source, for the
    places where the reader should see the exact characters of a name (tooltips). The fence is
    one backtick longer than the longest run of backticks inside, so none closes it early;
    CommonMark strips the one space padding each side."""
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    s = "".join(_clean(ch) for ch in s)
    fence = "`" * (1 + max(map(len, re.findall("`+", s)), default=0))
    return f"{fence} {s} {fence}"


def readable(escaped: str) -> str:
    """What a reader of `escape(text)` sees: references decoded, joiners dropped."""
    return html.unescape(escaped).replace(JOINER, "")


def _clean(ch: str) -> str:
    if ch in _BIDI:
        return ""
    cat = unicodedata.category(ch)
    return " " if cat == "Cc" or cat in ("Zl", "Zp") else ch
