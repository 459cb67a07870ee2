"""The page registry: every view's file, title, icon and one-line summary, in teaching order.

app.py builds st.navigation from it, Home its links and summaries, and the tests their page list,
so a new page is its view file plus one entry here. Plain data: importing this needs no Streamlit.
Icons are Material names (Streamlit bundles the font, so nothing is fetched from a CDN).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PageSpec:
    """One page: its script (relative to the repository root), title, icon and what it shows."""

    file: str
    title: str
    icon: str
    summary: str
    short: str = ""  # a one-word title for the presentation bar (default: the title)

    @property
    def short_title(self) -> str:
        return self.short or self.title

    @property
    def url_path(self) -> str:
        """Streamlit's default URL path of the page: its file name without ".py"."""
        return Path(self.file).stem


HOME = PageSpec(
    "views/home.py", "Home", ":material/home:", "what the app shows, Tweedie, a default model"
)
VIEWS: tuple[PageSpec, ...] = (
    PageSpec(
        "views/forward.py",
        "Data & forward process",
        ":material/blur_on:",
        "samples, noising over t, exact p_t",
        short="Forward",
    ),
    PageSpec(
        "views/train.py",
        "Train",
        ":material/model_training:",
        "settings, live loss, several named models, upload",
    ),
    PageSpec(
        "views/score_field.py",
        "Score field",
        ":material/explore:",
        "learned vs exact score arrows, the error",
        short="Score",
    ),
    PageSpec(
        "views/dae.py",
        "DAE reconstructions",
        ":material/cleaning_services:",
        "noisy points → denoised, vs optimal",
        short="DAE",
    ),
    PageSpec(
        "views/loss.py",
        "Loss vs t",
        ":material/trending_down:",
        "per-t loss against the exact floor, weightings",
        short="Loss",
    ),
    PageSpec(
        "views/sampling.py",
        "Sampling",
        ":material/animation:",
        "eight samplers, learned vs exact score, animated",
    ),
    PageSpec(
        "views/likelihood.py",
        "Likelihood",
        ":material/query_stats:",
        "the model's own density (probability-flow ODE) vs the exact log p₀",
    ),
    PageSpec(
        "views/guidance.py",
        "Guidance",
        ":material/call_split:",
        "classifier-free guidance vs the tilted density, learned and exact",
    ),
)
PAGES: tuple[PageSpec, ...] = (HOME, *VIEWS)  # navigation order; Home is the default page


def by_title(title: str) -> PageSpec:
    """The page with this title (st.navigation reports the page it runs by its title)."""
    return next((p for p in PAGES if p.title == title), HOME)


def title(file: str) -> str:
    """The title of the page whose script is `file` (e.g. "views/loss.py" -> "Loss vs t")."""
    return next(p.title for p in PAGES if p.file == file)
