"""Headless Debian Chromium driven by Selenium, for the gallery tests and tools/gallery_bench.py.

Nothing is downloaded: the browser and chromedriver are the system's (`apt-get install chromium
chromium-driver`), passed by path, and Selenium Manager is told to stay offline.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = os.environ.get("DPIQA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DPIQA_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1"]

TRAP = "window.__alerts = []; window.alert = window.confirm = window.prompt = function (m) { window.__alerts.push(String(m)); };"


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None."""
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found: apt-get install -y --no-install-recommends {pkg}"
    return None


class Browser:
    """A started headless Chromium; `with Browser((w, h)) as b:` gives it (b.driver is the WebDriver),
    then quits it and removes its profile."""

    def __init__(self, size=(1280, 900)):
        self.size = size

    def __enter__(self):
        os.environ.setdefault("SE_OFFLINE", "true")
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        why = missing_browser()
        if why:
            raise RuntimeError(why)
        self.profile = tempfile.mkdtemp(prefix="dpiqa-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in FLAGS + [f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}"]:
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors (CSP reports too)
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        return self

    def console_errors(self, ignore: tuple[str, ...] = ()) -> list[str]:
        """SEVERE console messages since the last call (a blocked script or style shows up here)."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and not any(i in e["message"] for i in ignore)]

    def open(self, path, timeout: float = 30.0) -> None:
        """Load a page with window.alert trapped (calls land in window.__alerts), wait for the gallery."""
        from selenium.webdriver.support.ui import WebDriverWait

        if not getattr(self, "_trap", False):  # runs before any page script, on every page of this session
            self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
            self._trap = True
        self.driver.get(Path(path).resolve().as_uri())
        WebDriverWait(self.driver, timeout).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")

    def __exit__(self, *exc):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
