"""The viewer in a real browser (Debian's headless Chromium driven by Selenium, WebGL in software): select a scene
with the page's button, move the camera (server-side camera API, then a mouse drag on the canvas), and check that
the picture the browser shows changes with the camera and is the Python render (``Run.render``) of that camera.

Slow (a browser and a tiny trained run): CI runs it in a second line of .ci/run (``-m slow tests/viewer``).
``LATENTSCENES_VIEWER_SCREENSHOT=PATH`` also saves the window's screenshot there (docs/images/viewer.png is made
from the demo's runs by scripts/viewer_screenshot.py).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

import latentscenes as ls
from viewer_fixtures import tiny_runs

pytestmark = pytest.mark.slow


def _expected_on_canvas(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A rendered ``[h, w, 3]`` image in [0, 1] as the browser shows it: stretched over the canvas (bilinear)."""
    from PIL import Image

    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.asarray(Image.fromarray(u8).resize(size, Image.BILINEAR), np.float32) / 255.0


def _region(a: np.ndarray) -> np.ndarray:
    """The part of the canvas no overlay covers (the controls float on the right, a notice top left, the axes
    gizmo bottom left)."""
    H, W = a.shape[:2]
    return a[int(0.25 * H) : int(0.9 * H), int(0.3 * W) : int(0.62 * W)]


def _stable_screenshot(drv, previous: np.ndarray | None, timeout: float = 20.0) -> np.ndarray:
    """The canvas once the browser has drawn the new frame: two equal shots in a row, different from ``previous``."""
    from latentscenes.viewer.browser import screenshot

    end, last = time.time() + timeout, None
    while time.time() < end:
        shot = screenshot(drv).astype(np.float32) / 255.0
        if last is not None and np.abs(shot - last).max() == 0 and (
                previous is None or np.abs(_region(shot) - _region(previous)).mean() > 1e-3):
            return shot
        last = shot
        time.sleep(0.3)
    raise TimeoutError("the canvas did not settle on a new picture")


@pytest.fixture(scope="module")
def viewer_runs(tmp_path_factory) -> dict:
    return tiny_runs(tmp_path_factory)


@pytest.fixture()
def browser():
    from latentscenes.viewer.browser import BrowserUnavailable, chromium_driver

    try:
        drv = chromium_driver(1200, 800)
    except BrowserUnavailable as e:
        if os.environ.get("CI"):
            raise  # CI installs chromium (scripts/setup.sh): its absence is a failure there
        pytest.skip(str(e))
    yield drv
    drv.quit()


def test_the_browser_shows_the_python_render_of_its_camera(viewer_runs, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from latentscenes.viewer import Viewer
    from latentscenes.viewer.browser import canvas_box, open_page, screenshot

    batch = ls.load(viewer_runs["batch"], device="cpu")
    viewer = Viewer([batch], port=0, out_dir=tmp_path / "out", full_height=64)
    viewer.start()
    try:
        open_page(browser, viewer.url)
        s = viewer.wait_for_session(60)
        first = s.wait_for_frame(lambda f: f.quality == "full", 60)
        assert first.scene_id == "tr00"  # no evaluation file: the run's order

        # select a scene with the page's own button, then narrow the list with its filter box: the selection
        # follows the first (only) match
        browser.find_element(By.XPATH, "//button[normalize-space()='tr01']").click()
        s.wait_for_frame(lambda f: f.scene_id == "tr01" and f.quality == "full", 60)
        box = [i for i in browser.find_elements(By.TAG_NAME, "input")  # the only empty, visible text box
               if i.get_attribute("type") == "text" and i.is_displayed() and not i.get_attribute("value")][0]
        box.send_keys("ex")
        s.wait_for_frame(lambda f: f.scene_id == "ex00" and f.quality == "full", 60)
        assert [r.scene_id for r in s._matches] == ["ex00"] and s.g_count.content.startswith("1 of 3 scenes")

        x, y, W, H = canvas_box(browser)
        shots, renders = {}, {}
        previous = None
        for name, eye in (("a", [1.2, 0.5, 0.6]), ("b", [-0.6, 1.1, 0.9])):
            c2w = ls.look_at(eye)
            s.set_camera(c2w)
            frame = s.wait_for_frame(lambda f: f.quality == "full" and np.abs(f.c2w - c2w).max() < 1e-4, 60)
            shots[name] = previous = _stable_screenshot(browser, previous)
            # the camera as the browser has it, rebuilt here without the viewer's conversion: OpenCV look-at and
            # the vertical fov over the canvas's aspect
            fy = 0.5 / math.tan(s.client.camera.fov / 2)
            K = np.array([[fy * H / W, 0, 0.5], [0, fy, 0.5], [0, 0, 1]], np.float32)
            assert frame.panel_hw == (64, int(round(64 * W / H / 8)) * 8)
            renders[name] = _expected_on_canvas(batch.render("ex00", c2w, K, *frame.panel_hw)["rgb"], (W, H))

        def err(shot, expected):
            return float(np.abs(_region(shot) - _region(expected)).mean())

        moved = float(np.abs(_region(shots["a"]) - _region(shots["b"])).mean())
        assert moved > 0.02, f"the picture hardly changed with the camera ({moved:.4f})"
        for name, other in (("a", "b"), ("b", "a")):
            e_same, e_other = err(shots[name], renders[name]), err(shots[name], renders[other])
            assert e_same < 0.01, f"camera {name}: the browser's picture differs from run.render ({e_same:.4f})"
            assert e_same < 0.2 * e_other, (name, e_same, e_other)

        # a mouse drag on the canvas orbits the camera: previews while moving, then the full view
        n_before = len([f for f in s.frames if f[1] == "preview"])
        chain = ActionChains(browser)
        chain.move_to_element_with_offset(browser.find_element(By.TAG_NAME, "canvas"), -W // 6, 0).click_and_hold()
        for _ in range(15):
            chain.move_by_offset(12, 3).pause(0.05)
        chain.release().perform()
        dragged = s.wait_for_frame(lambda f: f.quality == "full" and np.abs(f.c2w - ls.look_at([-0.6, 1.1, 0.9])).max() > 1e-2, 60)
        previews = [f for f in s.frames if f[1] == "preview"][n_before:]
        assert len(previews) >= 3, previews
        ms = float(np.median([f[2] for f in previews]))
        assert ms < 200.0, f"preview frames take {ms:.0f} ms (< 5 fps)"
        shot = _stable_screenshot(browser, shots["b"])
        fy = 0.5 / math.tan(s.client.camera.fov / 2)
        K = np.array([[fy * H / W, 0, 0.5], [0, fy, 0.5], [0, 0, 1]], np.float32)
        exp = _expected_on_canvas(batch.render("ex00", dragged.c2w, K, *dragged.panel_hw)["rgb"], (W, H))
        assert err(shot, exp) < 0.01

        # depth: no decoder; the latent run renders an 8x larger latent image so that depth has the shown size
        from latentscenes.viewer.images import mode_image

        s.set_mode("depth")
        dep = s.wait_for_frame(lambda f: f.mode == "depth" and f.quality == "full", 60)
        h, w = dep.panel_hw
        assert h == 64 and dep.image.shape == (h, w, 3)
        raw = batch.render("ex00", dep.c2w, dep.K, 8 * h, 8 * w, decode=False)
        np.testing.assert_array_equal(dep.image, mode_image(raw, "depth", (h, w), batch.near, batch.far))
        s.set_mode("rgb")
        s.wait_for_frame(lambda f: f.mode == "rgb" and f.quality == "full", 60)

        # the save button writes the view as a PNG
        browser.find_element(By.XPATH, "//button[normalize-space()='Save view as PNG']").click()
        end = time.time() + 30
        while time.time() < end and not list((tmp_path / "out").glob("ex00_rgb_*.png")):
            time.sleep(0.2)
        from PIL import Image

        saved = np.asarray(Image.open(next((tmp_path / "out").glob("ex00_rgb_*.png"))))
        assert saved.shape == (64,) + (dragged.panel_hw[1], 3)

        # the turntable button writes an MP4 with Run.turntable (the dataset's camera distance)
        browser.find_element(By.XPATH, "//button[normalize-space()='Turntable as MP4']").click()
        mp4 = tmp_path / "out" / "ex00_turntable" / "turntable.mp4"
        end = time.time() + 60
        while time.time() < end and not (mp4.is_file() and "wrote" in s.g_export.content):
            time.sleep(0.2)
        import imageio.v3 as iio

        assert iio.imread(mp4, index=None).shape[:3] == (24, 32, 32)

        # ground-truth mode: go to a held-out view; its PSNR is the one `latentscenes eval` wrote for that view
        import json

        view = json.loads(viewer_runs["metrics"].read_text())["scenes"]["ex00"]["views"][0]
        sv = batch.views("ex00")
        from latentscenes.viewer.camera import fov_from_intrinsics

        s.set_camera(sv.c2w[view["index"]].numpy(), fov_from_intrinsics(sv.K[view["index"]].numpy()))
        s.set_mode("gt")
        gt = s.wait_for_frame(lambda f: f.quality == "gt" and f.info["view"] == view["index"], 60)
        assert gt.info["split"] == "test" and gt.info["psnr"]["batch"] == pytest.approx(view["psnr"], abs=0.05)
        assert gt.image.shape == (2 * 32 + 4, 2 * 32 + 4, 3)  # [truth | render] over [blank | error]

        window = screenshot(browser, canvas_only=False)
        Image.fromarray(window).save(tmp_path / "viewer.png")
        if os.environ.get("LATENTSCENES_VIEWER_SCREENSHOT"):
            Image.fromarray(window).save(os.environ["LATENTSCENES_VIEWER_SCREENSHOT"])
    finally:
        viewer.stop()
