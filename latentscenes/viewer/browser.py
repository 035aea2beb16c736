"""Drive Debian's headless Chromium against a running viewer (Selenium): the browser test and the docs' screenshot.

Needs the ``chromium`` and ``chromium-driver`` Debian packages (``scripts/setup.sh`` installs them) and the
``selenium`` package (the ``dev`` extras). WebGL runs in software (SwiftShader) in a headless browser.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["BrowserUnavailable", "find_chromium", "chromium_driver", "open_page", "screenshot", "canvas_box"]


class BrowserUnavailable(RuntimeError):
    """No Chromium, no chromedriver or no selenium on this machine (the message says which and how to get it)."""


def find_chromium() -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths: ``$LATENTSCENES_CHROMIUM`` / ``$LATENTSCENES_CHROMEDRIVER``, else the
    ones on ``PATH``. Raises :class:`BrowserUnavailable` when one is missing."""
    browser = os.environ.get("LATENTSCENES_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("LATENTSCENES_CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        raise BrowserUnavailable("no chromium / chromedriver on PATH: install Debian's chromium and chromium-driver "
                                 "(bash scripts/setup.sh does)")
    return browser, driver


def chromium_driver(width: int = 1200, height: int = 800) -> Any:
    """A headless Chromium (Selenium ``webdriver.Chrome``) with a ``width x height`` window; quit it when done.

    Raises:
        BrowserUnavailable: selenium, chromium or chromedriver missing.
    """
    try:
        from selenium import webdriver  # optional dependency: selenium
        from selenium.webdriver.chrome.service import Service  # optional dependency: selenium
    except ImportError as e:
        raise BrowserUnavailable(f"selenium is not installed ({e}): pip install -e '.[dev]'") from None
    browser, driver = find_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu-sandbox",
                f"--window-size={int(width)},{int(height)}", "--force-device-scale-factor=1",
                "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--hide-scrollbars"):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(driver))


def open_page(drv: Any, url: str, timeout: float = 30.0) -> None:
    """Load ``url`` and wait until the page has a canvas of non-zero size (``TimeoutError`` after ``timeout``)."""
    drv.get(url)
    end = time.time() + timeout
    while time.time() < end:
        if canvas_box(drv) is not None:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{url}: no canvas within {timeout:.0f} s")


def canvas_box(drv: Any) -> tuple[int, int, int, int] | None:
    """``(left, top, width, height)`` CSS px of the largest canvas of the page (the 3D view), or ``None``."""
    boxes = drv.execute_script(
        "return Array.from(document.querySelectorAll('canvas')).map(c => {const r = c.getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height];});")
    boxes = [b for b in boxes or [] if b[2] > 0 and b[3] > 0]
    if not boxes:
        return None
    b = max(boxes, key=lambda b: b[2] * b[3])
    return int(round(b[0])), int(round(b[1])), int(round(b[2])), int(round(b[3]))


def screenshot(drv: Any, canvas_only: bool = True) -> np.ndarray:
    """The browser window (or only the 3D view's canvas) as ``uint8 [H, W, 3]``."""
    img = np.asarray(Image.open(io.BytesIO(drv.get_screenshot_as_png())).convert("RGB"))
    if not canvas_only:
        return img
    box = canvas_box(drv)
    if box is None:
        raise RuntimeError("the page has no canvas")
    x, y, w, h = box
    return img[y : y + h, x : x + w]
