"""Measure the viewer's frame rate while the camera moves, and take the documentation's screenshot.

    python scripts/viewer_screenshot.py --run reports/demo/runs/exploit --run reports/demo/runs/rgb \
        --out docs/images/viewer.png

Starts a viewer on the runs, opens it in Debian's headless Chromium (latentscenes.viewer.browser), then
  1. shows the first run alone and drags the mouse over the canvas for ``--seconds`` (an orbit): prints the
     preview frames per second, their median render time and the preview size the automatic sizing chose;
  2. shows the runs side by side (when two are given) on ``--scene`` (default: the worst PSNR), waits for the full
     view and saves the browser window as PNG to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="append", required=True, help="run folder (repeat for side by side)")
    ap.add_argument("--out", default="docs/images/viewer.png", help="screenshot PNG")
    ap.add_argument("--scene", default=None, help="scene of the screenshot (default: the worst PSNR)")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the mouse orbit that measures the rate")
    ap.add_argument("--data", default=None, help="dataset folder (default: the run's)")
    ap.add_argument("--size", type=int, default=None, help="full view height (default: the run's image size)")
    ap.add_argument("--window", default="1280x800", help="browser window WxH (CSS px)")
    args = ap.parse_args()

    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    import latentscenes as ls
    from latentscenes.cli.view import resolve_metrics
    from latentscenes.utils.device import set_cpu_threads
    from latentscenes.viewer import Viewer
    from latentscenes.viewer.browser import canvas_box, chromium_driver, open_page, screenshot

    set_cpu_threads()
    runs = [ls.load(r, "all", "cpu") for r in args.run]
    psnr, files = resolve_metrics(runs, [])
    viewer = Viewer(runs, psnr, files, port=0, out_dir="/tmp/viewer_out", data=args.data, full_height=args.size,
                    compare=False, scene=args.scene)
    viewer.start()
    drv = chromium_driver(*(int(v) for v in args.window.split("x")))
    try:
        open_page(drv, viewer.url)
        s = viewer.wait_for_session(60)
        s.wait_for_frame(lambda f: f.quality == "full", 120)
        _, _, W, H = canvas_box(drv)

        # 1. the frame rate while the mouse orbits the camera (first run alone)
        canvas = drv.find_element(By.TAG_NAME, "canvas")
        cams: list[float] = []
        s.client.camera.on_update(lambda _c: cams.append(time.time()))
        t0 = time.time()
        end = t0 + args.seconds
        step = 0
        while time.time() < end:
            sign, dx = (1 if step % 2 == 0 else -1), max(2, W // 60)
            chain = ActionChains(drv, duration=20).move_to_element_with_offset(canvas, -sign * W // 6, 0)
            chain.click_and_hold()
            for _ in range(20):
                chain.move_by_offset(sign * dx, sign).pause(0.03)
            chain.release().perform()
            step += 1
        t1 = time.time()
        prev = [f for f in list(s.frames) if f[1] == "preview" and t0 <= f[0] <= t1]
        if len(prev) >= 2:
            fps = (len(prev) - 1) / (prev[-1][0] - prev[0][0])
            ms = float(np.median([f[2] for f in prev]))
            print(f"moving: {len(prev)} preview frames, {fps:.1f} frames/s, median render+compose {ms:.0f} ms, "
                  f"preview height now {s.preview_height} px (canvas {W}x{H}); load average "
                  f"{os.getloadavg()[0]:.1f}; the browser sent {len(cams) / (t1 - t0):.1f} camera updates/s")
        else:
            print("moving: fewer than 2 preview frames")

        # 2. the screenshot: side by side when two runs are given
        if len(runs) > 1:
            s.g_compare.value = viewer.labels[1]
        s.set_camera(viewer.default_c2w(30.0))
        end, calm = time.time() + 300, 0
        while time.time() < end and calm < 4:  # settled for a second: the full view and every thumbnail shown
            calm = calm + 1 if s.settled() else 0
            time.sleep(0.25)
        for b in drv.find_elements(By.CSS_SELECTOR, ".mantine-Notification-closeButton"):
            b.click()  # the "software WebGL" notice of a headless browser
        time.sleep(2.0)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(screenshot(drv, canvas_only=False)).save(out)
        print(f"wrote {out}: {s.last.scene_id}, {s.last.runs}")
    finally:
        drv.quit()
        viewer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
