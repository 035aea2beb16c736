"""The web viewer (``latentscenes view``): viser serves the page, this module renders what the browser's camera sees.

One :class:`Viewer` holds the runs (:class:`latentscenes.api.Run`) and a viser server; every browser tab that
connects gets a :class:`Session`: its own controls, its own camera, and a worker thread that renders

  * a *preview* (``preview_height`` px high, JPEG) whenever the camera moved since the last frame: while the
    camera moves frames follow each other as fast as they render; with ``auto`` preview size the height is
    lowered (raised) by one step when a preview took more than 120 ms (less than 60 ms), so the view keeps
    moving at about 8 frames per second, but never below :meth:`Viewer.preview_floor` (a latent decoded much
    smaller than the training images shows other colours);
  * the *full* view (``full_height`` px, PNG) once the camera has been still for 0.25 s, or at once after a
    change of scene, run or display mode.

The image is sent as viser's background image, which the browser stretches over the canvas: its intrinsics use
the canvas aspect (:mod:`latentscenes.viewer.camera`). Two runs side by side each get half the canvas, rendered
from the same camera pose and focal length (each half shows the middle of the view). All model calls hold one
lock (one render at a time).
"""

from __future__ import annotations

import collections
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from latentscenes.api import look_at
from latentscenes.evaluation.cameras import camera_defaults_from_manifest, camera_defaults_from_views
from latentscenes.evaluation.images import save_png
from latentscenes.training import pipeline
from latentscenes.viewer import camera as vcam
from latentscenes.viewer import images as vimg
from latentscenes.viewer.scenes import SceneRow, filter_rows, row_label, scene_rows

__all__ = ["ViewerError", "PortInUseError", "NoScenesError", "check_port", "check_runs", "Frame", "Session",
           "Viewer", "PREVIEW_BUDGET_MS", "SETTLE_S"]

#: a preview frame (render + compose) should take at most this long (auto preview size)
PREVIEW_BUDGET_MS = 120.0
#: the camera must be still this long before the full-resolution frame
SETTLE_S = 0.25
#: scenes listed in the dropdown at most (the filter narrows the list)
MAX_OPTIONS = 500
#: thumbnails per page of the scene browser, and their side in px
PAGE_SIZE, THUMB_PX = 6, 64


class ViewerError(ValueError):
    """The viewer cannot start on these runs (one-line message for the command line)."""


class PortInUseError(ViewerError):
    """The port asked for is taken (another viewer, another program)."""


class NoScenesError(ViewerError):
    """A run without scenes (a pre-trained 3Da-AE package such as ``shipped``)."""


def check_port(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` when ``host:port`` cannot be bound (``port = 0``: any free port, no check).

    viser itself would silently move to the next free port; the viewer refuses instead, so the address printed
    and bookmarked is the one asked for.
    """
    if int(port) == 0:
        return
    if not 0 < int(port) < 65536:
        raise ViewerError(f"--port must be in 1..65535 (or 0 for any free port), got {port}")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no conflict
        try:
            s.bind((host, int(port)))
        except OSError as e:
            raise PortInUseError(f"port {port} on {host} is already in use ({e.strerror or e}): stop the other "
                                 "viewer or program, or choose another port with --port (0 picks a free one)") from None


def check_runs(runs: Sequence[Any], labels: Sequence[str] | None = None) -> None:
    """Refuse runs the viewer cannot show.

    Raises:
        ViewerError: no run given.
        NoScenesError: a run without scenes (``kind == "pretrained"``, e.g. ``shipped``).
        ViewerError: a second (third, ...) run sharing no scene id with the first one.
    """
    if not runs:
        raise ViewerError("give at least one run: latentscenes view --run RUN")
    labels = list(labels or [str(r.path) for r in runs])
    for r, lab in zip(runs, labels):
        if not r.scenes:
            spec = pipeline.shipped_name(r.path) or str(r.path)
            what = "a pre-trained 3Da-AE package" if r.kind == "pretrained" else f"a {r.kind} run"
            raise NoScenesError(f"{spec} holds no scenes ({what}): learn scenes with it (latentscenes exploit --run "
                                f"{spec} --data D --out OUT) and view OUT")
    first = set(runs[0].scenes)
    for r, lab in zip(runs[1:], labels[1:]):
        if not first & set(r.scenes):
            raise ViewerError(f"{labels[0]} and {lab} share no scene ({labels[0]} holds e.g. {runs[0].scenes[:3]}, "
                              f"{lab} holds e.g. {r.scenes[:3]}): compare runs fitted on the same scenes, e.g. a "
                              "demo's runs/exploit and runs/rgb")


@dataclass
class Frame:
    """A frame the viewer sent to one browser tab.

    Attributes:
        image: ``uint8 [H, W, 3]`` as sent (side-by-side panels concatenated; ground-truth mode letterboxed).
        quality: ``"preview"``, ``"full"`` or ``"gt"``.
        mode: display mode (:data:`latentscenes.viewer.images.MODES`).
        scene_id: the scene shown; runs: labels of the runs shown, left to right.
        c2w: ``[4, 4]`` OpenCV camera-to-world used; K: ``[3, 3]`` normalised intrinsics of *one* panel.
        panel_hw: ``(h, w)`` pixel size of one panel (``None`` in ground-truth mode).
        ms: wall milliseconds of render + compose; time: ``time.time()`` when sent.
        info: mode-specific facts (ground truth: ``view``, ``split``, ``psnr`` per run).
    """

    image: np.ndarray
    quality: str
    mode: str
    scene_id: str
    runs: list[str]
    c2w: np.ndarray
    K: np.ndarray
    panel_hw: tuple[int, int] | None
    ms: float
    time: float
    info: dict = field(default_factory=dict)


def _label_runs(runs: Sequence[Any]) -> list[str]:
    names = [Path(r.path).name or str(r.path) for r in runs]
    out = []
    for r, n in zip(runs, names):
        p = Path(r.path)
        out.append(f"{p.parent.name}/{n}" if names.count(n) > 1 or n in ("exploit", "rgb", "train") else n)
    return [o if out.count(o) == 1 else f"{o} ({i + 1})" for i, o in enumerate(out)]


class Viewer:
    """A viser server showing the scenes of one or more runs.

    Args:
        runs: :class:`latentscenes.api.Run` objects (``latentscenes.load``); the first one's scenes are listed,
            the others can be shown side by side (on the scenes they share with it).
        psnr: per run, ``{scene_id: held-out PSNR dB}`` (:func:`latentscenes.viewer.scenes.read_psnr`), or
            ``None``/``{}`` for none; metrics_files: per run, the file it came from (shown in the browser).
        host, port: where to serve (``port = 0``: any free port; see :attr:`port` after :meth:`start`).
        out_dir: where "Save view as PNG" and "Turntable as MP4" write.
        full_height: height (px) of the still view; default each run's image size (256 when unknown).
        preview_height: height (px) of the moving view; ``None``: automatic (see the module docstring).
        scene: scene shown first; default the first of the list (the worst PSNR).
        data: dataset folder for ground-truth views and turntables; default the one each run records.
        compare: show the second run side by side from the start (when there are two or more runs).
    Raises:
        ViewerError / NoScenesError: see :func:`check_runs`. SceneNotFoundError: ``scene`` not in the first run.
    """

    def __init__(self, runs: Sequence[Any], psnr: Sequence[dict | None] | None = None,
                 metrics_files: Sequence[str | None] | None = None, *, host: str = "127.0.0.1", port: int = 8080,
                 out_dir: str | Path = "viewer_out", full_height: int | None = None,
                 preview_height: int | None = None, scene: str | None = None, data: str | Path | None = None,
                 compare: bool = True, labels: Sequence[str] | None = None) -> None:
        self.runs = list(runs)
        self.labels = list(labels) if labels else _label_runs(self.runs)
        check_runs(self.runs, self.labels)
        self.psnr = [dict(p or {}) for p in (psnr or [None] * len(self.runs))]
        self.psnr += [{}] * (len(self.runs) - len(self.psnr))
        self.metrics_files = list(metrics_files or [None] * len(self.runs))
        self.metrics_files += [None] * (len(self.runs) - len(self.metrics_files))
        if scene is not None:
            self.runs[0].check_scenes([scene])
        self.initial_scene = scene
        self.host, self.port = host, int(port)
        self.out_dir = Path(out_dir)
        self.data = data
        self.compare_default = 1 if (compare and len(self.runs) > 1) else None
        self.multiple = max(int(r.downsample) for r in self.runs)
        res = [r.resolution for r in self.runs if r.resolution]
        self.full_height = int(full_height or (max(res) if res else 256))
        self.preview_height = preview_height
        self.lock = threading.RLock()  # one model call at a time
        self.sessions: dict[int, Session] = {}
        self._sessions_changed = threading.Condition()
        self.thumbs: dict[tuple[int, str], np.ndarray] = {}
        self.server: Any = None
        self.radius, self.elevation, self.fov_y = self._default_camera()

    # ---------------------------------------------------------------------------------------------- camera
    def _default_camera(self) -> tuple[float, float, float]:
        """(radius, elevation rad, vertical fov rad): the dataset's turntable camera, else a guess from near/far."""
        run = self.runs[0]
        root = str(self.data) if self.data is not None else run.data_root
        cam = None
        try:
            cam = camera_defaults_from_manifest(root) if root else None
            if cam is None:
                cam = camera_defaults_from_views([run.views(run.scenes[0], self.data)], split="train")
        except Exception:  # no dataset here: the viewer still works, from a guessed camera
            cam = None
        if cam is not None:
            return float(cam.radius), float(cam.elevation), vcam.fov_from_intrinsics(cam.K)
        near, far = run.near, run.far
        radius = (near + far) / 2 if math.isfinite(near) and math.isfinite(far) and far > near else 2.5
        return radius, math.radians(20.0), math.radians(40.0)

    def default_c2w(self, azimuth_deg: float = 30.0) -> np.ndarray:
        """``[4, 4]`` OpenCV c2w of the default camera (the turntable's: dataset distance and elevation)."""
        az = math.radians(azimuth_deg)
        el = self.elevation
        eye = self.radius * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        return look_at(eye)

    # ---------------------------------------------------------------------------------------------- server
    @property
    def url(self) -> str:
        """``http://host:port`` of the page (after :meth:`start`)."""
        host = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        """Render one thumbnail per run (the first renders are slow), then start serving in background threads
        and return :attr:`url`.

        Raises:
            PortInUseError: the port is taken (checked before, and again after binding).
        """
        import viser  # imported on use: viser (its server stack) is only needed by `latentscenes view`

        check_port(self.host, self.port)
        for i, run in enumerate(self.runs):  # first renders are slow (lazy initialisation): not in front of the user
            self.thumbnail(i, run.scenes[0])
        server = viser.ViserServer(host=self.host, port=self.port, label="latentscenes viewer", verbose=False)
        bound = int(server.get_port())
        if self.port and bound != self.port:  # taken between the check and the bind: viser moved on
            server.stop()
            raise PortInUseError(f"port {self.port} on {self.host} is already in use: choose another with --port")
        self.port = bound
        self.server = server
        server.gui.configure_theme(control_width="large", show_share_button=False, dark_mode=False)
        server.gui.main_panel.dock_right()  # the canvas ends where the controls start: nothing of the view hidden
        server.scene.set_up_direction("+z")
        eye = self.default_c2w()[:3, 3]
        server.initial_camera.position = tuple(float(v) for v in eye)
        server.initial_camera.look_at = (0.0, 0.0, 0.0)
        server.initial_camera.up = (0.0, 0.0, 1.0)
        server.initial_camera.fov = float(self.fov_y)

        @server.on_client_connect
        def _connect(client: Any) -> None:
            s = Session(self, client)
            with self._sessions_changed:
                self.sessions[client.client_id] = s
                self._sessions_changed.notify_all()

        @server.on_client_disconnect
        def _disconnect(client: Any) -> None:
            with self._sessions_changed:
                s = self.sessions.pop(client.client_id, None)
                self._sessions_changed.notify_all()
            if s is not None:
                s.close()

        return self.url

    def stop(self) -> None:
        """Stop the server and every session's worker."""
        for s in list(self.sessions.values()):
            s.close()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def wait_for_session(self, timeout: float = 30.0) -> "Session":
        """The first connected browser tab's session, waiting up to ``timeout`` s (``TimeoutError`` after)."""
        end = time.time() + timeout
        with self._sessions_changed:
            while not self.sessions:
                left = end - time.time()
                if left <= 0:
                    raise TimeoutError(f"no browser connected to {self.url} within {timeout:.0f} s")
                self._sessions_changed.wait(left)
            return next(iter(self.sessions.values()))

    def preview_floor(self) -> int:
        """Smallest automatic preview height (px): 3/4 of the largest image size of the latent runs (rounded up to
        a multiple of 8), 16 for RGB runs, never above :attr:`full_height`.

        Decoding a latent much smaller than the training images changes what the decoder draws (an object a few
        latent pixels wide comes out in other colours), so a latent preview is not made smaller than that.
        """
        m = self.multiple
        lat = [int(r.resolution) for r in self.runs if r.is_latent and r.resolution]
        lo = max(16, math.ceil(0.75 * max(lat) / m) * m) if lat else 16
        return max(m, min(lo, self.full_height // m * m))

    # ---------------------------------------------------------------------------------------------- shared
    def thumbnail(self, run_index: int, scene_id: str) -> np.ndarray:
        """``uint8 [64, 64, 3]`` RGB of ``scene_id`` from the default camera (cached; a scene whose render fails
        gets a dark grey tile, and the error is raised once)."""
        key = (run_index, scene_id)
        if key not in self.thumbs:
            run = self.runs[run_index]
            K = vcam.panel_intrinsics(self.fov_y, 1.0)
            try:
                with self.lock:
                    out = run.render(scene_id, self.default_c2w(), K, THUMB_PX, THUMB_PX)
            except Exception:
                self.thumbs[key] = vimg.blank((THUMB_PX, THUMB_PX), 90)  # dark grey: not tried again
                raise
            self.thumbs[key] = vimg.to_uint8(out["rgb"])
        return self.thumbs[key]


class Session:
    """One browser tab: its controls, camera and render worker (built by :class:`Viewer` on connection).

    Attributes:
        scene_id, mode, primary (run index listed), compare (run index side by side or ``None``).
        preview_height, full_height: current sizes (px). last: the last :class:`Frame` sent.
        frames: ``(time, quality, ms)`` of the recent frames (for the frame rate).
    """

    def __init__(self, viewer: Viewer, client: Any) -> None:
        self.viewer, self.client = viewer, client
        self.primary = 0
        self.compare = viewer.compare_default
        self.mode = "rgb"
        m = viewer.multiple
        self.full_height = max(m, viewer.full_height // m * m)
        self.auto_preview = viewer.preview_height is None
        self.preview_floor = viewer.preview_floor()
        start = viewer.preview_height or self.preview_floor
        self.preview_height = max(m, int(start) // m * m)
        self.frames: collections.deque = collections.deque(maxlen=200)
        self.last: Frame | None = None
        self.last_error = ""
        self._rows: list[SceneRow] = []
        self._matches: list[SceneRow] = []
        self._label_to_id: dict[str, str] = {}
        self._page = 0
        self._cam_v = 0
        self._gui_v = 1
        self._done_cam = 0
        self._done_gui = 0
        self._need_full = False
        self._last_move = 0.0
        self._gt_key: tuple | None = None
        self._view_cache: dict[tuple[int, str], Any] = {}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._shown = threading.Condition()
        self._busy = ""  # an export in progress
        self._n_shown = 0
        self.scene_id = viewer.initial_scene or ""
        self._build_gui()
        client.camera.on_update(self._on_camera)
        self._thread = threading.Thread(target=self._loop, name=f"viewer-session-{client.client_id}", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------------------- gui
    def _build_gui(self) -> None:
        v, gui = self.viewer, self.client.gui
        with gui.add_folder("Scenes"):
            self.g_filter = gui.add_text("Filter", initial_value="", hint="Words the scene id must contain")
            self.g_count = gui.add_markdown("")
            self.g_scene = gui.add_dropdown("Scene", options=("-",))
            self.g_sheet = gui.add_image(vimg.blank((THUMB_PX, THUMB_PX)), format="jpeg")
            self.g_pick = gui.add_button_group("Open", options=("-",), hint="The thumbnails above, in order")
            self.g_page = gui.add_button_group("Page 1/1", options=("previous", "next"))
        with gui.add_folder("View"):
            self.g_mode = gui.add_dropdown("Show", options=tuple(vimg.MODES.values()),
                                           initial_value=vimg.MODES["rgb"])
            if len(v.runs) > 1:
                self.g_run = gui.add_dropdown("Run", options=tuple(v.labels), initial_value=v.labels[0])
                others = ("none",) + tuple(v.labels)
                self.g_compare = gui.add_dropdown(
                    "Side by side with", options=others,
                    initial_value=v.labels[self.compare] if self.compare is not None else "none")
            m, top = v.multiple, max(4 * self.full_height, 256)
            self.g_auto = gui.add_checkbox("Auto preview size", initial_value=self.auto_preview,
                                           hint=f"Keep a moving frame under {PREVIEW_BUDGET_MS:.0f} ms")
            self.g_preview = gui.add_slider("Preview height", min=m, max=top, step=m, initial_value=self.preview_height)
            self.g_full = gui.add_slider("Full height", min=m, max=top, step=m, initial_value=self.full_height)
            self.g_reset = gui.add_button("Reset camera")
            self.g_snap = gui.add_button("Go to nearest ground-truth view")
            self.g_status = gui.add_markdown("")
        with gui.add_folder("Export"):
            self.g_png = gui.add_button("Save view as PNG")
            self.g_mp4 = gui.add_button("Turntable as MP4")
            self.g_export = gui.add_markdown(f"Files go to `{v.out_dir}`")

        self.g_filter.on_update(lambda _: self._refresh_list())
        self.g_scene.on_update(lambda _: self._pick_label(self.g_scene.value))
        self.g_pick.on_click(lambda _: self.select_scene(self.g_pick.value))
        self.g_page.on_click(lambda _: self._turn_page(1 if self.g_page.value == "next" else -1))
        inv = {lab: k for k, lab in vimg.MODES.items()}
        self.g_mode.on_update(lambda _: self.set_mode(inv[self.g_mode.value]))
        if len(v.runs) > 1:
            self.g_run.on_update(lambda _: self._set_runs(v.labels.index(self.g_run.value), self.compare))
            self.g_compare.on_update(lambda _: self._set_runs(
                self.primary, None if self.g_compare.value == "none" else v.labels.index(self.g_compare.value)))
        self.g_auto.on_update(lambda _: setattr(self, "auto_preview", bool(self.g_auto.value)))
        self.g_preview.on_update(lambda _: self._set_heights(preview=int(self.g_preview.value)))
        self.g_full.on_update(lambda _: self._set_heights(full=int(self.g_full.value)))
        self.g_reset.on_click(lambda _: self.set_camera(self.viewer.default_c2w()))
        self.g_snap.on_click(lambda _: self._snap_to_view())
        self.g_png.on_click(lambda _: self._export(self.save_png))
        self.g_mp4.on_click(lambda _: self._export(self.save_turntable))
        self._rebuild_rows()

    def _shown_runs(self) -> list[int]:
        c = self.compare
        return [self.primary] + ([c] if c is not None and c != self.primary else [])

    def _rebuild_rows(self) -> None:
        v = self.viewer
        idx = self._shown_runs()
        ids = v.runs[self.primary].scenes
        for i in idx[1:]:
            held = set(v.runs[i].scenes)
            ids = [s for s in ids if s in held]
        self._rows = scene_rows(ids, [v.psnr[i] for i in idx])
        self._refresh_list()

    def _refresh_list(self) -> None:
        v = self.viewer
        self._matches = filter_rows(self._rows, self.g_filter.value)
        shown = self._matches[:MAX_OPTIONS]
        self._label_to_id = {row_label(r): r.scene_id for r in shown}
        files = [v.metrics_files[i] for i in self._shown_runs() if v.metrics_files[i]]
        have = any(r.psnr and r.psnr[0] is not None for r in self._rows)
        order = (f"sorted by held-out PSNR, worst first ({', '.join(Path(f).name for f in files)})" if have
                 else "no evaluation file: run order (give --metrics FILE for PSNR)")
        more = f"; the first {MAX_OPTIONS} are listed, narrow the filter" if len(self._matches) > MAX_OPTIONS else ""
        self.g_count.content = f"{len(self._matches)} of {len(self._rows)} scenes · {order}{more}"
        labels = tuple(self._label_to_id) or ("(no match)",)
        current = next((lab for lab, s in self._label_to_id.items() if s == self.scene_id), None)
        self.g_scene.options = labels  # may move the value to labels[0]: _pick_label follows
        if current is not None:
            self.g_scene.value = current
        elif self.scene_id == "" and self._label_to_id:
            self._pick_label(labels[0])
        self._page = 0
        self._refresh_page()

    def _pick_label(self, label: str) -> None:
        sid = self._label_to_id.get(label)
        if sid is not None:
            self.select_scene(sid)

    def _page_rows(self) -> list[SceneRow]:
        return self._matches[self._page * PAGE_SIZE : (self._page + 1) * PAGE_SIZE]

    def _turn_page(self, step: int) -> None:
        n_pages = max(1, math.ceil(len(self._matches) / PAGE_SIZE))
        self._page = (self._page + step) % n_pages
        self._refresh_page()

    def _refresh_page(self) -> None:
        rows = self._page_rows()
        n_pages = max(1, math.ceil(len(self._matches) / PAGE_SIZE))
        self.g_page.label = f"Page {self._page + 1}/{n_pages}"
        self.g_pick.options = tuple(r.scene_id for r in rows) or ("-",)
        self._update_sheet()
        self._wake.set()  # thumbnails to render

    def _update_sheet(self) -> None:
        rows = self._page_rows()
        thumbs = [self.viewer.thumbs.get((self.primary, r.scene_id)) for r in rows]
        labels = [f"{i + 1}. " + (r.scene_id if r.psnr[0] is None else f"{r.psnr[0]:.2f} dB") for i, r in enumerate(rows)]
        self.g_sheet.image = vimg.contact_sheet(thumbs, labels or ["no match"], cols=3, size=THUMB_PX)

    # ---------------------------------------------------------------------------------------------- actions
    def select_scene(self, scene_id: str) -> None:
        """Show ``scene_id`` (of the listed run). Raises ``SceneNotFoundError`` for an id it does not hold."""
        if scene_id == self.scene_id or scene_id in ("-", ""):
            return
        self.viewer.runs[self.primary].check_scenes([scene_id])
        self.scene_id = scene_id
        label = next((lab for lab, s in self._label_to_id.items() if s == scene_id), None)
        if label is not None and self.g_scene.value != label:
            self.g_scene.value = label
        self._touch()

    def set_mode(self, mode: str) -> None:
        """Display mode: one of :data:`latentscenes.viewer.images.MODES` (``ValueError`` otherwise)."""
        if mode not in vimg.MODES:
            raise ValueError(f"unknown display mode {mode!r}: choose one of {list(vimg.MODES)}")
        self.mode = mode
        if self.g_mode.value != vimg.MODES[mode]:
            self.g_mode.value = vimg.MODES[mode]
        self._touch()

    def _set_runs(self, primary: int, compare: int | None) -> None:
        self.primary, self.compare = primary, (None if compare == primary else compare)
        self._rebuild_rows()
        if self.scene_id not in set(r.scene_id for r in self._rows) and self._rows:
            self.select_scene(self._matches[0].scene_id if self._matches else self._rows[0].scene_id)
        self._touch()

    def _set_heights(self, preview: int | None = None, full: int | None = None) -> None:
        if (preview is None or preview == self.preview_height) and (full is None or full == self.full_height):
            return  # e.g. the slider following the automatic preview size: no new frame for that
        if preview is not None:
            self.preview_height = preview
        if full is not None:
            self.full_height = full
        self._touch()

    def set_camera(self, c2w: Any, fov_y: float | None = None) -> None:
        """Move this tab's browser camera to the OpenCV camera ``c2w [4, 4]`` (and vertical fov, radians)."""
        target = vcam.opencv_to_viser(c2w)
        cam = self.client.camera
        with self.client.atomic():
            cam.position = tuple(target["position"])
            cam.look_at = tuple(target["look_at"])
            cam.up_direction = tuple(target["up_direction"])
            if fov_y is not None:
                cam.fov = float(fov_y)

    def _touch(self) -> None:
        self._gui_v += 1
        self._gt_key = None
        self._wake.set()

    def _on_camera(self, _cam: Any) -> None:
        self._cam_v += 1
        self._wake.set()

    def close(self) -> None:
        """Stop the worker thread (the tab closed)."""
        self._stopped.set()
        self._wake.set()

    # ---------------------------------------------------------------------------------------------- worker
    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            if self._stopped.is_set() or not self.scene_id:
                continue
            try:
                self._step()
            except Exception as e:  # noqa: BLE001 - shown in the page, the worker goes on
                self.last_error = " ".join(f"{type(e).__name__}: {e}".split())
                self._set_status(f"**error**: {self.last_error}")
                self._need_full = False
                self._done_cam, self._done_gui = self._cam_v, self._gui_v

    def _step(self) -> None:
        now = time.time()
        cam_v, gui_v = self._cam_v, self._gui_v
        if cam_v != self._done_cam:
            self._done_cam = cam_v
            self._last_move = now
            if gui_v != self._done_gui:
                self._done_gui = gui_v
            self._show("preview")
            self._need_full = True
        elif gui_v != self._done_gui:
            self._done_gui = gui_v
            self._show("full")
            self._need_full = False
        elif self._need_full and now - self._last_move >= SETTLE_S:
            self._need_full = False
            self._show("full")
        elif self._need_full:
            self._wake.set()  # come back when the camera has settled
            time.sleep(0.02)
        else:
            self._render_one_thumbnail()

    def _render_one_thumbnail(self) -> None:
        for r in self._page_rows():
            if (self.primary, r.scene_id) not in self.viewer.thumbs:
                self.viewer.thumbnail(self.primary, r.scene_id)
                self._update_sheet()
                self._wake.set()
                return

    def _camera(self) -> tuple[np.ndarray, float, float]:
        cam = self.client.camera
        wxyz, pos, fov = np.array(cam.wxyz), np.array(cam.position), float(cam.fov)
        aspect = cam.image_width / cam.image_height if cam.image_height > 0 else 4.0 / 3.0
        c2w, _ = vcam.viser_to_opencv(wxyz, pos, fov, aspect)
        return c2w, fov, aspect

    def compose(self, quality: str) -> Frame:
        """Render the current view (``quality``: ``"preview"`` or ``"full"``) without sending it."""
        v = self.viewer
        c2w, fov, aspect = self._camera()
        idx = self._shown_runs()
        if self.mode == "gt":
            return self._compose_gt(c2w, aspect)
        n = len(idx)
        height = self.preview_height if quality == "preview" else self.full_height
        rgb = self.mode == "rgb"
        # RGB: the decoded image is (ph, pw), a multiple of the downsampling. Latent / depth / opacity need no
        # decoder: latent runs render them at (ph, pw) latent pixels (an image 8x larger, never decoded).
        ph, pw = vcam.panel_size(aspect, height, v.multiple if rgb else 1, n)
        K = vcam.panel_intrinsics(fov, aspect / n)
        t0 = time.perf_counter()
        panels = []
        with v.lock:
            for i in idx:
                run = v.runs[i]
                if self.mode == "latent" and not run.is_latent:
                    panels.append(vimg.blank((ph, pw)))
                    continue
                f = 1 if rgb else int(run.downsample)
                # while the camera moves, one decode per frame (a quarter of an offset ensemble's work); the still
                # "full" frame uses the run's render.offset_ensemble, as evaluation does
                out = run.render(self.scene_id, c2w, K, ph * f, pw * f, decode=rgb,
                                 offset_ensemble=1 if quality == "preview" and rgb and run.is_latent else None)
                panels.append(vimg.mode_image(out, self.mode, (ph, pw), run.near, run.far))
        img = vimg.hstack(panels)
        ms = (time.perf_counter() - t0) * 1000.0
        return Frame(img, quality, self.mode, self.scene_id, [v.labels[i] for i in idx], c2w, K, (ph, pw), ms,
                     time.time())

    def _views(self, run_index: int) -> Any:
        key = (run_index, self.scene_id)
        if key not in self._view_cache:
            with self.viewer.lock:
                self._view_cache[key] = self.viewer.runs[run_index].views(self.scene_id, self.viewer.data)
        return self._view_cache[key]

    def _compose_gt(self, c2w: np.ndarray, aspect: float) -> Frame:
        v = self.viewer
        idx = self._shown_runs()
        t0 = time.perf_counter()
        sv = self._views(self.primary)
        j = vcam.nearest_view(c2w, sv.c2w.numpy())
        gt = sv.images[j].permute(1, 2, 0).numpy()
        H, W = gt.shape[:2]
        cols, errs, psnr = [vimg.to_uint8(gt)], [vimg.blank((H, W))], {}
        with v.lock:
            for i in idx:
                rgb = v.runs[i].render(self.scene_id, sv.c2w[j], sv.K[j], H, W)["rgb"]
                cols.append(vimg.to_uint8(rgb))
                errs.append(vimg.error_image(rgb, gt))
                mse = float(np.mean((rgb - gt) ** 2))
                psnr[v.labels[i]] = -10.0 * math.log10(max(mse, 1e-10))
        img = vimg.vstack([vimg.hstack(cols, gap=4), vimg.hstack(errs, gap=4)], gap=4)
        ms = (time.perf_counter() - t0) * 1000.0
        info = {"view": j, "split": sv.split[j] if j < len(sv.split) else "", "psnr": psnr}
        return Frame(img, "gt", "gt", self.scene_id, [v.labels[i] for i in idx], sv.c2w[j].numpy(),
                     sv.K[j].numpy(), None, ms, time.time(), info)

    def _show(self, quality: str) -> None:
        if self.mode == "gt":
            c2w, _, aspect = self._camera()
            sv = self._views(self.primary)
            key = (self.scene_id, vcam.nearest_view(c2w, sv.c2w.numpy()), tuple(self._shown_runs()), round(aspect, 3))
            if key == self._gt_key:
                return
            frame = self._compose_gt(c2w, aspect)
            self._gt_key = key
            self.client.scene.set_background_image(vimg.letterbox(frame.image, aspect), format="png")
            p = " | ".join(f"{k} {x:.2f} dB" for k, x in frame.info["psnr"].items())
            self._record(frame)
            self._set_status(
                f"**{frame.scene_id}**: dataset view {frame.info['view']} ({frame.info['split']}), nearest to the "
                f"camera; columns: ground truth | {' | '.join(frame.runs)}; second row: error |render - truth| "
                f"(black 0 to yellow >= 0.25); PSNR {p} · {frame.ms:.0f} ms")
            return
        frame = self.compose(quality)
        if quality == "preview":
            self.client.scene.set_background_image(frame.image, format="jpeg", jpeg_quality=90)
            self._adapt_preview(frame.ms)
        else:
            self.client.scene.set_background_image(frame.image, format="png")
        self._record(frame)
        h, w = frame.image.shape[:2]
        fps = self.moving_fps()
        side = f" · left: {frame.runs[0]}, right: {frame.runs[1]}" if len(frame.runs) > 1 else f" · {frame.runs[0]}"
        self._n_shown += 1
        if quality == "preview" and self._n_shown % 4:
            return  # the status line at a quarter of the preview rate: fewer messages while moving
        self._set_status(f"**{frame.scene_id}** · {vimg.MODES[frame.mode]} · {quality} {w}x{h} px · "
                         f"{frame.ms:.0f} ms" + (f" · {fps:.1f} fps moving" if fps else "") + side)

    def _record(self, frame: Frame) -> None:
        with self._shown:
            self.last = frame
            self.frames.append((frame.time, frame.quality, frame.ms))
            self._shown.notify_all()

    def _adapt_preview(self, ms: float) -> None:
        if not self.auto_preview:
            return
        m = self.viewer.multiple
        if ms > PREVIEW_BUDGET_MS and self.preview_height - m >= self.preview_floor:
            self.preview_height -= m
        elif ms < PREVIEW_BUDGET_MS / 2 and self.preview_height + m <= self.full_height:
            self.preview_height += m
        else:
            return
        self.g_preview.value = self.preview_height  # (its callback only touches when the value changed)

    def _set_status(self, text: str) -> None:
        self.g_status.content = text

    def moving_fps(self, window_s: float = 2.0) -> float:
        """Preview frames per second over the last ``window_s`` seconds (0 when fewer than 2 previews)."""
        now = time.time()
        ts = [t for t, q, _ in list(self.frames) if q == "preview" and now - t <= window_s]
        return (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) >= 2 and ts[-1] > ts[0] else 0.0

    def settled(self) -> bool:
        """Whether the worker has nothing left to do: the last camera and control changes are shown at full
        quality and the thumbnails of the page are rendered."""
        return (self._done_cam == self._cam_v and self._done_gui == self._gui_v and not self._need_full
                and all((self.primary, r.scene_id) in self.viewer.thumbs for r in self._page_rows()))

    def wait_for_frame(self, accept: Callable[[Frame], bool], timeout: float = 30.0) -> Frame:
        """Block until a frame for which ``accept(frame)`` is true has been sent (``TimeoutError`` after)."""
        end = time.time() + timeout
        with self._shown:
            while self.last is None or not accept(self.last):
                left = end - time.time()
                if left <= 0:
                    raise TimeoutError(f"no matching frame within {timeout:.0f} s (last error: {self.last_error!r})")
                self._shown.wait(min(left, 0.2))
            return self.last

    # ---------------------------------------------------------------------------------------------- exports
    def _export(self, job: Callable[[], Path]) -> None:
        if self._busy:
            self.g_export.content = f"busy: {self._busy}"
            return
        try:
            path = job()
            self.client.send_file_download(path.name, path.read_bytes())
            self.g_export.content = f"wrote `{path}`"
        except Exception as e:  # noqa: BLE001 - reported in the page
            self.g_export.content = f"**error**: {' '.join(str(e).split())}"
        finally:
            self._busy = ""

    def save_png(self) -> Path:
        """Render the current view at full height (as shown: mode, side by side) and write it as PNG into
        the viewer's ``out_dir``. Returns the path (``<scene>_<mode>_<n>.png``)."""
        self._busy = "saving PNG"
        if self.mode == "gt":
            c2w, _, aspect = self._camera()
            frame = self._compose_gt(c2w, aspect)
        else:
            frame = self.compose("full")
        out = self.viewer.out_dir
        out.mkdir(parents=True, exist_ok=True)
        n = 1
        while (out / f"{frame.scene_id}_{frame.mode}_{n}.png").exists():
            n += 1
        return Path(save_png(frame.image, out / f"{frame.scene_id}_{frame.mode}_{n}.png"))

    def save_turntable(self) -> Path:
        """Write an MP4 turntable of the current scene with the listed run (``Run.turntable``, the dataset's
        camera distance and elevation) into ``out_dir/<scene>_turntable/``; the live view waits meanwhile.
        Returns the MP4's path. Raises DatasetError/FileNotFoundError without the dataset."""
        self._busy = "writing a turntable"
        self.g_export.content = f"writing the turntable of `{self.scene_id}` (the view waits)..."
        folder = self.viewer.out_dir / f"{self.scene_id}_turntable"
        with self.viewer.lock:
            res = self.viewer.runs[self.primary].turntable(self.scene_id, folder, format="mp4", data=self.viewer.data)
        return Path(res["animations"]["mp4"]["turntable"])

    def _snap_to_view(self) -> None:
        try:
            c2w, _, _ = self._camera()
            sv = self._views(self.primary)
            j = vcam.nearest_view(c2w, sv.c2w.numpy())
            self.set_camera(sv.c2w[j].numpy(), vcam.fov_from_intrinsics(sv.K[j].numpy()))
        except Exception as e:  # noqa: BLE001 - reported in the page
            self._set_status(f"**error**: {' '.join(str(e).split())}")
