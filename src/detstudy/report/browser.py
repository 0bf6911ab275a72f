"""Open a rendered report in a real browser (headless Chromium, through its ChromeDriver) and
read back what a reader would see: how long the page took to load, its sections and tables,
the images that failed to decode, and a full-page screenshot.

Speaks the W3C WebDriver protocol (JSON over HTTP) with the standard library, so it needs only
Debian's ``chromium`` and ``chromium-driver`` packages. Used by the tests and by
``benchmarks/report_size.py``.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from detstudy.engine.io import atomic_path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")

_PAGE_STATE = """
const navigation = performance.getEntriesByType("navigation")[0];
return {
  load_ms: navigation ? navigation.loadEventEnd - navigation.startTime : null,
  sections: [...document.querySelectorAll("section[id]")].map(s => s.id),
  toc: [...document.querySelectorAll("nav a[href^='#']")].map(a => a.getAttribute("href").slice(1)),
  tables: [...document.querySelectorAll("table")].map(t => ({id: t.id, rows: t.rows.length})),
  images: document.images.length,
  broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60)),
  height: document.documentElement.scrollHeight,
};
"""


@dataclass
class PageReport:
    load_seconds: float      # navigation start to the load event, as the page measured it
    sections: list[str]      # ids of every <section>
    toc: list[str]           # the anchors the table of contents links to
    tables: list[dict]       # {"id", "rows"} of every <table>
    images: int
    broken: list[str]        # images that did not decode (alt text)
    screenshot: Path | None


def find_browser() -> tuple[str, str] | None:
    """``(browser, chromedriver)`` paths, or ``None`` when either is missing."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(base: str, method: str, path: str, body: dict | None = None, timeout: float = 60) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"ChromeDriver {method} {path}: {error.read().decode(errors='replace')[:500]}") from None


def open_report(html: str | Path, screenshot: str | Path | None = None, width: int = 1400,
                timeout: float = 60) -> PageReport:
    """Load ``html`` (a file) in headless Chromium and report what it shows; with ``screenshot``,
    save a full-page PNG there."""
    found = find_browser()
    if found is None:
        raise RuntimeError("no headless Chromium: install Debian's chromium and chromium-driver "
                           "(tests/system_packages.sh does)")
    browser, chromedriver = found
    port = _free_port()
    driver = subprocess.Popen([chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    session = None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if _call(base, "GET", "/status", timeout=2).get("value", {}).get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline or driver.poll() is not None:
                raise RuntimeError(f"{chromedriver} did not start on port {port}")
            time.sleep(0.1)
        options = {"binary": browser, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                                "--disable-dev-shm-usage", f"--window-size={width},1000"]}
        created = _call(base, "POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options, "pageLoadStrategy": "normal"}}})
        session = created["value"]["sessionId"]
        _call(base, "POST", f"/session/{session}/url", {"url": Path(html).resolve().as_uri()}, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:  # the load event's end is set just after it fires: read it once it is there
            state = _call(base, "POST", f"/session/{session}/execute/sync", {"script": _PAGE_STATE, "args": []})["value"]
            if state["load_ms"] and state["load_ms"] > 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{html}: the page never finished loading in {timeout:.0f} s")
            time.sleep(0.05)
        shot = None
        if screenshot is not None:
            shot = Path(screenshot)
            captured = _call(base, "POST", f"/session/{session}/goog/cdp/execute",
                             {"cmd": "Page.captureScreenshot",
                              "params": {"format": "png", "captureBeyondViewport": True}}, timeout=timeout)
            shot.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(shot) as tmp:
                tmp.write_bytes(base64.b64decode(captured["value"]["data"]))
        return PageReport(load_seconds=state["load_ms"] / 1000, sections=state["sections"], toc=state["toc"],
                          tables=state["tables"], images=state["images"], broken=state["broken"], screenshot=shot)
    finally:
        if session is not None:
            try:
                _call(base, "DELETE", f"/session/{session}", timeout=10)
            except (RuntimeError, OSError):
                pass
        driver.terminate()
        try:
            driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver.kill()
