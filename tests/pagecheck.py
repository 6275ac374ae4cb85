"""Checks of a self-contained page: its URL references, and how headless chromium loads it."""

import json
import os
import re
import shutil
import subprocess
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("FRAGSCAN_REQUIRE_BROWSER"),
    reason="Debian chromium is not installed (CI installs it and sets FRAGSCAN_REQUIRE_BROWSER)",
)


def _flags(width: int) -> list[str]:
    assert CHROMIUM, "chromium is required here: apt-get install -y chromium"
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--window-size={width},1600",
    ]


def browse(page: Path, profile: Path) -> dict:
    """Open ``page`` in headless chromium; return the DOM after scripts ran, the console messages,
    the URLs the page requested (from Chrome's NetLog, keyed to the file:// page) and a screenshot."""
    flags = _flags(1280)
    url = page.resolve().as_uri()
    net_log = profile / "net.json"
    dump = subprocess.run(
        [*flags, f"--user-data-dir={profile / 'dom'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    shot = profile / "screenshot.png"
    screen = subprocess.run(
        [*flags, f"--user-data-dir={profile / 'shot'}", f"--log-net-log={net_log}", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in (dump.stderr + screen.stderr).splitlines() if ":CONSOLE" in line]
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start and event["params"].get("network_isolation_key", "").startswith("file://")
    ]
    return {"dom": dump.stdout, "console": console, "requests": requested, "screenshot": shot}


def measure(page: Path, profile: Path, script: str, width: int = 1400) -> object:
    """Run ``script`` (a JavaScript function body that returns JSON-able data) in ``page`` once its
    own scripts ran, in a headless chromium ``width`` px wide; return what it returned. Layout is
    live: the script may click, scroll and read sizes."""
    probe = profile / f"probe-{page.name}"
    body = (
        "<script>const probe = document.body.appendChild(document.createElement('pre')); probe.id = 'probe';"
        f"let seen; try {{ seen = (function () {{ {script} }})(); }}"
        " catch (error) { seen = {probeError: String(error)}; }"
        "probe.textContent = JSON.stringify(seen);</script>"
    )
    probe.write_text(page.read_text().replace("</body>", body + "</body>"))
    dump = subprocess.run(
        [*_flags(width), f"--user-data-dir={profile / 'probe'}", "--dump-dom", probe.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', dump.stdout, re.DOTALL)
    assert found, f"the probe did not run: {dump.stderr[-2000:]}"
    seen = json.loads(html_unescape(found.group(1)))
    assert not (isinstance(seen, dict) and "probeError" in seen), seen
    return seen


class _References(HTMLParser):
    """Every URL-valued attribute in a page."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [
            value for name, value in attrs if name in ("src", "href", "xlink:href", "srcset", "action", "data")
        ]


def external_references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    local = re.compile(r"^(#|data:)")
    return [u for u in parser.urls if u and not local.match(u)] + re.findall(
        r"url\(\s*['\"]?(?!#|data:)[^)]*\)|@import", html
    )
