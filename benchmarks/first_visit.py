"""Bytes on the wire for a student's first visit and for a reload, as Chromium counts them.

    .venv/bin/python benchmarks/first_visit.py --url http://127.0.0.1:8601 --url http://127.0.0.1:8080

For each URL (a replica directly: what a student got before the balancer compressed anything;
the hall through HAProxy: what a student gets now) a fresh Chromium profile opens a page of the
app (`--page`, Score field by default: the first chart loads Plotly's bundle, which Home alone
does not), waits until its chart is drawn and the network is idle, then
reloads the page (same browser cache, as F5 does) and waits again. The bytes are Chromium's
own: the sum of `encodedDataLength` of every `Network.loadingFinished` event of the DevTools
protocol (headers and body as received, i.e. compressed when the server compressed), plus the
websocket frames' payload separately (the app's protocol, not static files). `--runs` repeats
each measurement in a new browser profile.

Loopback only. Prints a Markdown table; `--json` also writes the rows.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOME_READY = "Train the default model"  # views/home.py's button: Home has been drawn
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg'  # a page's chart, drawn


@dataclass
class Visit:
    url: str
    kind: str  # "first" or "reload"
    requests: int  # HTTP requests that finished (cache hits served from memory count 0 bytes)
    http_bytes: int  # Σ encodedDataLength: headers + (compressed) bodies as received
    ws_bytes: int  # websocket frames received (the app's protocol messages)
    gzip_responses: int  # responses with Content-Encoding: gzip/deflate/br
    seconds: float  # from navigation to Home drawn and the network idle


class Counter:
    """Sums Chromium's Network events on one page's DevTools session."""

    def __init__(self, cdp) -> None:
        self.requests = self.http = self.ws = self.gzip = 0
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _finished(self, e: dict) -> None:
        self.requests += 1
        self.http += int(e.get("encodedDataLength", 0))

    def _response(self, e: dict) -> None:
        headers = {k.lower(): v for k, v in e["response"].get("headers", {}).items()}
        if headers.get("content-encoding", "") in ("gzip", "deflate", "br"):
            self.gzip += 1

    def _frame(self, e: dict) -> None:
        r = e["response"]
        data = r.get("payloadData", "")
        self.ws += len(base64.b64decode(data)) if r.get("opcode") == 2 else len(data.encode())

    def take(self) -> tuple[int, int, int, int]:
        out = (self.requests, self.http, self.ws, self.gzip)
        self.requests = self.http = self.ws = self.gzip = 0
        return out


def visit(url: str, page_path: str, timeout_s: float) -> list[Visit]:
    """One fresh profile: the first visit of `url`/`page_path`, then a reload."""
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            counter = Counter(cdp)
            for kind in ("first", "reload"):
                start = time.perf_counter()
                if kind == "first":
                    page.goto(f"{url}/{page_path}", timeout=timeout_s * 1000)
                else:
                    page.reload(timeout=timeout_s * 1000)
                if page_path:
                    page.locator(CHART).first.wait_for(timeout=timeout_s * 1000)
                else:
                    page.get_by_role("button", name=HOME_READY).wait_for(timeout=timeout_s * 1000)
                page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
                seconds = time.perf_counter() - start
                requests, http, ws, gz = counter.take()
                rows.append(Visit(f"{url}/{page_path}", kind, requests, http, ws, gz, seconds))
        finally:
            browser.close()
    return rows


def table(rows: list[Visit]) -> str:
    groups: dict[tuple[str, str], list[Visit]] = {}
    for r in rows:
        groups.setdefault((r.url, r.kind), []).append(r)
    lines = [
        "| URL | visit | runs | requests | MB on the wire (HTTP) | gzip responses "
        "| MB websocket | seconds (mean ± sd) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (url, kind), rs in groups.items():
        mb = [r.http_bytes / 1e6 for r in rs]
        secs = [r.seconds for r in rs]
        sd = statistics.stdev(secs) if len(secs) > 1 else 0.0
        lines.append(
            f"| {url} | {kind} | {len(rs)} | {statistics.fmean(r.requests for r in rs):.0f} | "
            f"{statistics.fmean(mb):.2f} (min {min(mb):.2f}, max {max(mb):.2f}) | "
            f"{statistics.fmean(r.gzip_responses for r in rs):.0f} | "
            f"{statistics.fmean(r.ws_bytes for r in rs) / 1e6:.2f} | "
            f"{statistics.fmean(secs):.1f} ± {sd:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", action="append", required=True, help="loopback URL (repeatable)")
    p.add_argument(
        "--page",
        default="score_field",
        help="the page a student opens first (its URL path; '' for Home): a page with a chart "
        "loads Plotly's bundle too, as every lecture does",
    )
    p.add_argument("--runs", type=int, default=3, help="fresh browser profiles per URL")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per page load")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    for url in args.url:
        if urlsplit(url).hostname not in {"127.0.0.1", "localhost", "::1"}:
            p.error(f"loopback only, not {url}")
    rows = [
        v
        for _ in range(args.runs)
        for url in args.url
        for v in visit(url.rstrip("/"), args.page, args.timeout)
    ]
    print(f"{time.strftime('%Y-%m-%d %H:%M')} UTC, load {os.getloadavg()[0]:.1f}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
