"""Loaders for multi-view scene folders: SRN (ShapeNet ``cars_train``), EG3D ``dataset.json``, nerfstudio
``transforms.json`` and Blender/NeRF-synthetic ``transforms_{train,val,test}.json``.

Every loader returns a :class:`~latentscenes.data.types.SceneViews` in the one internal convention
(images float32 [0, 1] composited on white, OpenCV c2w, intrinsics normalised by image size). Every
problem in the input raises :class:`~latentscenes.data.types.DatasetError` naming the file: unreadable or
truncated image, missing or malformed pose, non-rotation matrix, NaN/inf values, images of different
sizes within one scene, a scene with no views.

Layouts (auto-detected by :func:`detect_layout`):
  * ``srn``: ``rgb/*.png`` + ``pose/*.txt`` (16 floats, OpenCV c2w, matched by file stem) +
    ``intrinsics.txt`` (line 1 ``f cx cy ...`` in pixels, last line ``H W`` the size those pixels refer
    to: ShapeNet's files say 512x512 while the images are 128x128, so normalising by the stated size is
    what makes them right) or ``intrinsics/*.txt`` per view (3x3 or 16 numbers, pixels of the image);
    optional ``mask/*.png``; optional ``scene.json`` (view splits and metadata, written by our builder).
    Without ``scene.json`` the paper's protocol applies: the first 10 sorted views are ``test`` when the
    scene has at least 20 views, otherwise every view is ``train``.
  * ``eg3d``: ``dataset.json`` = ``{"labels": [[relative image path, [16 c2w + 9 normalised K]], ...]}``
    (OpenCV c2w); images relative to the json's folder. A ``dataset.json`` listing several scene folders
    (``<scene>/rgb/x.png``) is a multi-scene dataset; splits as for ``srn``.
  * ``transforms``: nerfstudio ``transforms.json`` (``fl_x, fl_y, cx, cy, w, h`` at the top level or per
    frame, ``frames[].file_path``, ``frames[].transform_matrix`` OpenGL c2w, optional
    ``train_filenames``/``val_filenames``/``test_filenames``); without split lists every view is ``train``.
  * ``blender``: ``transforms_train.json`` / ``transforms_val.json`` / ``transforms_test.json``
    (``camera_angle_x``, ``frames[].file_path`` without extension, OpenGL c2w); val and test views
    become ``test``.
  OpenGL c2w (x right, y up, z backward) -> OpenCV: ``c2w_cv = c2w_gl @ diag(1, -1, -1, 1)``.
  RGBA images are composited on white and their alpha becomes the mask.
  File paths read from a json (``file_path``, EG3D label paths) must be relative and stay inside the json's
  folder (the scene folder, or the dataset root for a root ``dataset.json``): an absolute path or one that
  climbs out with ``..`` is a DatasetError, never read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from latentscenes.data.types import DatasetError, SceneViews, confined_path

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


# Loading thousands of scenes needs glibc's mmap threshold fixed (latentscenes.utils.memory); the command sets it
# at start-up, never this module at import.
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
PAPER_TEST_VIEWS = 10


# ---------------------------------------------------------------------------------------------- checks
def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image fully: ``(rgb [H, W, 3] float32 in [0, 1] composited on white, alpha [H, W] or None)``.

    Raises:
        DatasetError: naming ``path`` if it is missing, unreadable or truncated.
    """
    try:
        with Image.open(path) as im:
            im.load()  # forces the full decode: a truncated file raises here
            mode = im.mode
            if mode in ("RGBA", "LA") or (mode == "P" and "transparency" in im.info):
                arr = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
                a = arr[..., 3]
                rgb = arr[..., :3] * a[..., None] + (1.0 - a[..., None])
                return rgb, a
            if mode in ("I;16", "I", "F"):
                arr = np.asarray(im, dtype=np.float32)
                arr = arr / (65535.0 if arr.max() > 255 else 255.0)
                return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2), None
            return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0, None
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable or truncated image ({e})") from None


def read_mask(path: Path) -> np.ndarray:
    """Mask image -> ``[H, W]`` float32 in [0, 1] (alpha channel if present, else luminance).

    Raises:
        DatasetError: naming ``path`` if it is unreadable or truncated.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA"):
                return np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DatasetError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable or truncated mask ({e})") from None


def check_c2w(m: Any, where: str) -> np.ndarray:
    """Validate a camera-to-world matrix: 4x4 (or 3x4), finite, last row [0 0 0 1], rotation part orthonormal
    with determinant +1 (tolerance 1e-3). Returns it as ``[4, 4]`` float64.

    Raises:
        DatasetError: naming ``where`` (file) and the problem.
    """
    try:
        a = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: malformed pose (not a numeric matrix)") from None
    if a.size == 12:
        a = np.concatenate([a.reshape(3, 4), [[0.0, 0.0, 0.0, 1.0]]])
    if a.size != 16:
        raise DatasetError(f"{where}: malformed pose, expected 16 (4x4) or 12 (3x4) numbers, got {a.size}")
    a = a.reshape(4, 4)
    if not np.isfinite(a).all():
        raise DatasetError(f"{where}: pose contains NaN or inf")
    if np.abs(a[3] - [0, 0, 0, 1]).max() > 1e-4:
        raise DatasetError(f"{where}: pose last row is {a[3].tolist()}, expected [0, 0, 0, 1]")
    R = a[:3, :3]
    err = np.abs(R @ R.T - np.eye(3)).max()
    det = np.linalg.det(R)
    if err > 1e-3 or abs(det - 1.0) > 1e-3:
        raise DatasetError(f"{where}: pose rotation is not a rotation matrix (max |R R^T - I| = {err:.3g}, det = {det:.4g})")
    return a


def check_K(K: Any, where: str) -> np.ndarray:
    """Validate normalised intrinsics ``[3, 3]``: finite, positive focal lengths, principal point in (0, 1).

    Raises:
        DatasetError: naming ``where`` and the problem.
    """
    k = np.asarray(K, dtype=np.float64)
    if k.size != 9:
        raise DatasetError(f"{where}: malformed intrinsics, expected 9 numbers, got {k.size}")
    k = k.reshape(3, 3)
    if not np.isfinite(k).all():
        raise DatasetError(f"{where}: intrinsics contain NaN or inf")
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise DatasetError(f"{where}: intrinsics focal lengths must be positive, got fx={k[0, 0]}, fy={k[1, 1]}")
    if not (0.0 < k[0, 2] < 1.0 and 0.0 < k[1, 2] < 1.0):
        raise DatasetError(f"{where}: normalised principal point ({k[0, 2]:.4g}, {k[1, 2]:.4g}) is outside the image; "
                           "are the intrinsics given for another image size?")
    return k


def _read_numbers(path: Path) -> list[float]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable ({e})") from None
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError as e:
        raise DatasetError(f"{path}: malformed numbers ({e})") from None


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: malformed JSON ({e})") from None


def _paper_split(n: int) -> list[str]:
    return ["test" if (n >= 2 * PAPER_TEST_VIEWS and i < PAPER_TEST_VIEWS) else "train" for i in range(n)]


def _assemble(scene_id: str, files: list[Path], c2ws: list[np.ndarray], Ks: list[np.ndarray], split: list[str],
              resolution: int | None, mask_files: list[Path | None] | None = None, meta: dict | None = None,
              where: Path | None = None) -> SceneViews:
    """Read images (and masks), check sizes agree, resize, stack into a SceneViews."""
    if not files:
        raise DatasetError(f"{where or scene_id}: scene has no views")
    imgs, masks = [], []
    size = None
    first = None
    any_mask = False
    for i, f in enumerate(files):
        rgb, alpha = read_image(f)
        if size is None:
            size, first = rgb.shape[:2], f
        elif rgb.shape[:2] != size:
            raise DatasetError(f"{f}: image size {rgb.shape[1]}x{rgb.shape[0]} differs from {size[1]}x{size[0]} of {first} "
                               "(all images of a scene must have one size)")
        m = None
        if mask_files is not None and mask_files[i] is not None:
            m = read_mask(mask_files[i])
            if m.shape != size:
                raise DatasetError(f"{mask_files[i]}: mask size {m.shape[1]}x{m.shape[0]} differs from image size {size[1]}x{size[0]}")
        elif alpha is not None:
            m = alpha
        any_mask |= m is not None
        imgs.append(rgb)
        masks.append(m)
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    mask_t = None
    if any_mask:
        if any(m is None for m in masks):
            raise DatasetError(_mixed_alpha_message(files, masks))
        mask_t = torch.from_numpy(np.stack(masks))[:, None].contiguous()
    if resolution is not None and (images.shape[-2] != resolution or images.shape[-1] != resolution):
        images = resize_area(images, resolution)
        if mask_t is not None:
            mask_t = resize_area(mask_t, resolution)
    return SceneViews(
        scene_id=scene_id,
        images=images.float().clamp_(0.0, 1.0),
        c2w=torch.from_numpy(np.stack(c2ws)).float(),
        K=torch.from_numpy(np.stack(Ks)).float(),
        split=list(split),
        masks=None if mask_t is None else mask_t.float().clamp_(0.0, 1.0),
        view_names=[f.stem for f in files],
        meta=dict(meta or {}),
    )


def _mixed_alpha_message(files: list[Path], masks: list) -> str:
    """The error for a scene whose views are partly RGBA, partly RGB: it names the odd view(s) out (the
    fewer kind), e.g. the one RGBA image among RGB ones, not the first view of the majority."""
    with_alpha = [f for f, m in zip(files, masks) if m is not None]
    without = [f for f, m in zip(files, masks) if m is None]
    if len(with_alpha) <= len(without):
        odd, rest, what, other = with_alpha, without, "has an alpha channel (RGBA)", "none"
    else:
        odd, rest, what, other = without, with_alpha, "has no alpha channel (RGB)", "one"
    more = f" (as do {len(odd) - 1} more)" if len(odd) > 1 else ""
    return (f"{odd[0]}: {what}{more} but {len(rest)} other view(s) of the scene have {other} (e.g. {rest[0].name}); "
            "save every view of a scene with alpha or every view without")


def resize_area(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize ``[N, C, H, W]`` to ``[N, C, resolution, resolution]`` with area averaging (exact box filter
    for integer factors). Normalised intrinsics are unchanged by a resize of the whole image."""
    return torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="area")


# ---------------------------------------------------------------------------------------------- SRN
def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


def _srn_intrinsics(scene: Path, image_hw: tuple[int, int] | None) -> np.ndarray | None:
    f = scene / "intrinsics.txt"
    if not f.is_file():
        return None
    try:
        lines = [ln.split() for ln in f.read_text().splitlines() if ln.strip()]
        focal, cx, cy = (float(v) for v in lines[0][:3])
    except (ValueError, IndexError, OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{f}: malformed SRN intrinsics, expected 'f cx cy ...' on line 1 ({e})") from None
    H = W = None
    if len(lines) >= 4 and len(lines[-1]) == 2:
        try:
            H, W = (float(v) for v in lines[-1])
        except ValueError:
            raise DatasetError(f"{f}: malformed last line, expected 'H W'") from None
    if H is None:
        if image_hw is None:
            raise DatasetError(f"{f}: no 'H W' line and no image to take the size from")
        H, W = image_hw
    if not (math.isfinite(H) and math.isfinite(W) and H > 0 and W > 0):
        raise DatasetError(f"{f}: image size on the last line must be positive, got '{H:g} {W:g}'")
    K = np.array([[focal / W, 0.0, cx / W], [0.0, focal / H, cy / H], [0.0, 0.0, 1.0]])
    return check_K(K, str(f))


def _scene_info(path: Path) -> dict[str, Any]:
    """Read an SRN ``scene.json`` (``{"views": {"train": [names], "test": [names]}, "meta": {...}}``).

    Raises:
        DatasetError: naming ``path``: not JSON, not an object, ``views`` not an object of name lists or
            ``meta`` not an object.
    """
    info = _load_json(path)
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: expected an object with 'views' and 'meta'")
    views = info.get("views", {})
    if not (isinstance(views, dict) and all(
            isinstance(names, list) and all(isinstance(n, str) for n in names) for names in views.values())):
        raise DatasetError(f"{path}: 'views' must be an object of view-name lists, e.g. "
                           '{"train": ["000000"], "test": ["000001"]}')
    if not isinstance(info.get("meta", {}), dict):
        raise DatasetError(f"{path}: 'meta' must be an object")
    return info


def load_srn_scene(scene: str | Path, resolution: int | None = None) -> SceneViews:
    """Load one SRN-layout scene folder (see the module docstring).

    Returns:
        SceneViews with images ``[V, 3, H, W]`` (H = W = ``resolution`` when given), OpenCV c2w, normalised K.

    Raises:
        DatasetError: naming the file for any bad input; the folder when it has no views.
    """
    scene = Path(scene)
    rgb_dir = scene / "rgb"
    if not rgb_dir.is_dir():
        raise DatasetError(f"{scene}: not an SRN scene (no rgb/ folder)")
    files = _list_images(rgb_dir)
    if not files:
        raise DatasetError(f"{scene}: scene has no views (rgb/ is empty)")
    info: dict[str, Any] = {}
    if (scene / "scene.json").is_file():
        info = _scene_info(scene / "scene.json")
    c2ws, Ks = [], []
    K_scene = None
    per_view_K = (scene / "intrinsics").is_dir()
    if not per_view_K:
        K_scene = _srn_intrinsics(scene, _peek_size(files[0]))
        if K_scene is None:
            raise DatasetError(f"{scene / 'intrinsics.txt'}: missing (neither intrinsics.txt nor intrinsics/ exists)")
    for f in files:
        pf = scene / "pose" / f"{f.stem}.txt"
        if not pf.is_file():
            raise DatasetError(f"{pf}: missing pose for image {f}")
        c2ws.append(check_c2w(_read_numbers(pf), str(pf)))
        if per_view_K:
            kf = scene / "intrinsics" / f"{f.stem}.txt"
            nums = _read_numbers(kf)
            if len(nums) not in (9, 16):
                raise DatasetError(f"{kf}: malformed intrinsics, expected 9 or 16 numbers, got {len(nums)}")
            k = np.asarray(nums).reshape(3, 3) if len(nums) == 9 else np.asarray(nums).reshape(4, 4)[:3, :3]
            h, w = _peek_size(f)
            k = k / np.array([[w], [h], [1.0]])
            Ks.append(check_K(k, str(kf)))
        else:
            Ks.append(K_scene)
    mask_dir = scene / "mask"
    mask_files = None
    if mask_dir.is_dir():
        mask_files = []
        for f in files:
            cands = [mask_dir / f"{f.stem}{e}" for e in IMAGE_EXTS]
            hit = next((c for c in cands if c.is_file()), None)
            if hit is None:
                raise DatasetError(f"{mask_dir / (f.stem + '.png')}: missing mask for image {f}")
            mask_files.append(hit)
    if "views" in info:
        lookup = {n: "train" for n in info["views"].get("train", [])}
        lookup.update({n: "test" for n in info["views"].get("test", [])})
        unknown = [f.stem for f in files if f.stem not in lookup]
        if unknown:
            raise DatasetError(f"{scene / 'scene.json'}: views {unknown[:3]} of rgb/ are not listed in 'views'")
        split = [lookup[f.stem] for f in files]
    else:
        split = _paper_split(len(files))
    return _assemble(scene.name, files, c2ws, Ks, split, resolution, mask_files, info.get("meta", {}), scene)


def _peek_size(f: Path) -> tuple[int, int]:
    try:
        with Image.open(f) as im:
            return im.height, im.width
    except FileNotFoundError:
        raise DatasetError(f"{f}: image file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DatasetError(f"{f}: unreadable image ({e})") from None


# ---------------------------------------------------------------------------------------------- EG3D
def read_eg3d_labels(json_path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Parse an EG3D ``dataset.json``: list of ``(relative path, c2w [4, 4], K [3, 3])`` (validated).

    Raises:
        DatasetError: naming the json and the entry for malformed labels, NaN/inf, non-rotations, and image paths
            that are absolute or lead outside the json's folder.
    """
    data = _load_json(json_path)
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list):
        raise DatasetError(f"{json_path}: expected {{\"labels\": [[path, [25 numbers]], ...]}}")
    out = []
    for j, entry in enumerate(labels):
        where = f"{json_path} (labels[{j}])"
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DatasetError(f"{where}: malformed entry, expected [path, [25 numbers]]")
        try:
            v = np.asarray(entry[1], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise DatasetError(f"{where} {entry[0]}: malformed pose (not numbers)") from None
        if v.size != 25:
            raise DatasetError(f"{where} {entry[0]}: malformed pose, expected 25 numbers (16 c2w + 9 K), got {v.size}")
        where = f"{json_path} ({entry[0]})"
        confined_path(json_path.parent, entry[0], f"{json_path} (labels[{j}])")  # images stay inside the dataset
        out.append((entry[0], check_c2w(v[:16], where), check_K(v[16:], where)))
    return out


def load_eg3d_scene(json_path: str | Path, resolution: int | None = None, prefix: str | None = None,
                    scene_id: str | None = None) -> SceneViews:
    """Load the views of an EG3D ``dataset.json`` (only those under ``prefix/`` when given) as one scene.

    Raises:
        DatasetError: naming the file for bad input; when no label matches (scene with no views).
    """
    json_path = Path(json_path)
    base = json_path.parent
    labels = read_eg3d_labels(json_path)
    if prefix is not None:
        labels = [lab for lab in labels if Path(lab[0]).parts[:1] == (prefix,)]
    labels.sort(key=lambda t: t[0])
    files = [base / p for p, _, _ in labels]
    sid = scene_id or prefix or base.name
    if not files:
        raise DatasetError(f"{json_path}: scene {sid!r} has no views")
    mask_files = None
    cand = [f.parent.parent / "mask" / f"{f.stem}.png" for f in files]
    if all(c.is_file() for c in cand):
        mask_files = cand
    return _assemble(sid, files, [c for _, c, _ in labels], [k for _, _, k in labels], _paper_split(len(files)),
                     resolution, mask_files, {}, json_path)


# ---------------------------------------------------------------------------------------------- transforms.json
def _frame_image(base: Path, fp: str, where: str) -> Path:
    """The image file of a frame's ``file_path`` (with or without extension) inside the scene folder ``base``.

    Raises:
        DatasetError: an absolute path or one leading out of ``base`` (naming ``where`` and the path), or no file.
    """
    p = confined_path(base, fp, where)
    if p.suffix.lower() in IMAGE_EXTS and p.is_file():
        return p
    for e in IMAGE_EXTS:
        q = Path(str(p) + e)
        if q.is_file():
            return q
    raise DatasetError(f"{where}: image {fp!r} not found (looked for {p} and {p}.png/.jpg)")


def load_transforms_scene(folder: str | Path, resolution: int | None = None) -> SceneViews:
    """Load a nerfstudio ``transforms.json`` or Blender ``transforms_{train,val,test}.json`` scene folder.

    Raises:
        DatasetError: naming the json for missing/malformed frames or intrinsics, and image files for bad images.
    """
    folder = Path(folder)
    entries: list[tuple[Path, np.ndarray, dict, str, str]] = []  # image, c2w_cv, intr dict, split, json name
    if (folder / "transforms.json").is_file():
        jp = folder / "transforms.json"
        data = _load_json(jp)
        if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
            raise DatasetError(f"{jp}: expected an object with a 'frames' list")
        split_of: dict[str, str] = {}
        for key, s in (("train_filenames", "train"), ("val_filenames", "test"), ("test_filenames", "test")):
            for fn in data.get(key, []) or []:
                split_of[str(Path(fn))] = s
        for j, fr in enumerate(data["frames"]):
            where = f"{jp} (frames[{j}])"
            if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
                raise DatasetError(f"{where}: frame needs 'file_path' and 'transform_matrix' (missing pose?)")
            c2w = check_c2w(fr["transform_matrix"], where) @ GL_TO_CV
            img = _frame_image(folder, fr["file_path"], where)
            s = split_of.get(str(Path(fr["file_path"])), "train")
            entries.append((img, c2w, {**data, **fr}, s, where))
    else:
        for name, s in (("train", "train"), ("val", "test"), ("test", "test")):
            jp = folder / f"transforms_{name}.json"
            if not jp.is_file():
                continue
            data = _load_json(jp)
            if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
                raise DatasetError(f"{jp}: expected an object with a 'frames' list")
            for j, fr in enumerate(data["frames"]):
                where = f"{jp} (frames[{j}])"
                if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
                    raise DatasetError(f"{where}: frame needs 'file_path' and 'transform_matrix' (missing pose?)")
                c2w = check_c2w(fr["transform_matrix"], where) @ GL_TO_CV
                entries.append((_frame_image(folder, fr["file_path"], where), c2w, {**data, **fr}, s, where))
        if not any((folder / f"transforms_{n}.json").is_file() for n in ("train", "val", "test")):
            raise DatasetError(f"{folder}: no transforms.json or transforms_{{train,val,test}}.json")
    if not entries:
        raise DatasetError(f"{folder}: scene has no views (no frames)")
    Ks = []
    for img, _, d, _, where in entries:
        h, w = _peek_size(img)
        if "fl_x" not in d and "camera_angle_x" not in d:
            raise DatasetError(f"{where}: no intrinsics (need fl_x/fl_y/cx/cy/w/h or camera_angle_x)")
        try:
            if "fl_x" in d:
                fx = float(d["fl_x"])
                fy = float(d.get("fl_y", fx))
                W = float(d.get("w", w))
                H = float(d.get("h", h))
                cx = float(d.get("cx", W / 2.0))
                cy = float(d.get("cy", H / 2.0))
                K = [[fx / W, 0, cx / W], [0, fy / H, cy / H], [0, 0, 1]]
            else:
                ax = float(d["camera_angle_x"])
                fx = 0.5 / math.tan(ax / 2.0)
                fy = fx * w / h if "camera_angle_y" not in d else 0.5 / math.tan(float(d["camera_angle_y"]) / 2.0)
                K = [[fx, 0, 0.5], [0, fy, 0.5], [0, 0, 1]]
        except (TypeError, ValueError, ZeroDivisionError) as e:  # a word, or a size / angle of 0
            raise DatasetError(f"{where}: malformed intrinsics ({e})") from None
        Ks.append(check_K(K, where))
    return _assemble(folder.name, [e[0] for e in entries], [e[1] for e in entries], Ks, [e[3] for e in entries],
                     resolution, None, {}, folder)


# ---------------------------------------------------------------------------------------------- dispatch
def detect_layout(path: str | Path) -> str:
    """``"srn"``, ``"eg3d"``, ``"transforms"`` or ``"blender"`` for a scene folder (or an EG3D json file).

    Raises:
        DatasetError: if the folder matches no known layout.
    """
    p = Path(path)
    if p.is_file() and p.name == "dataset.json":
        return "eg3d"
    if not p.exists():
        raise DatasetError(f"{p}: no such scene folder")
    if (p / "transforms.json").is_file():
        return "transforms"
    if any((p / f"transforms_{n}.json").is_file() for n in ("train", "val", "test")):
        return "blender"
    if (p / "dataset.json").is_file():
        return "eg3d"
    if (p / "rgb").is_dir():
        return "srn"
    raise DatasetError(f"{p}: unknown scene layout (expected rgb/+pose/ (SRN), dataset.json (EG3D), "
                       "transforms.json (nerfstudio) or transforms_train.json (Blender))")


def load_scene(path: str | Path, resolution: int | None = None) -> SceneViews:
    """Load one scene in any supported layout (auto-detected), in the internal convention.

    Args:
        path: scene folder (SRN, EG3D, nerfstudio, Blender layouts) or an EG3D ``dataset.json``.
        resolution: if given, images (and masks) are resized to ``resolution x resolution`` with area
            averaging; K is normalised so it does not change.

    Returns:
        SceneViews: images ``[V, 3, H, W]`` float32 in [0, 1] on white, c2w ``[V, 4, 4]`` OpenCV, K ``[V, 3, 3]``
        normalised, per-view split, optional masks ``[V, 1, H, W]``.

    Raises:
        DatasetError: naming the offending file (see the module docstring for every case).
    """
    p = Path(path)
    layout = detect_layout(p)
    if layout == "srn":
        return load_srn_scene(p, resolution)
    if layout == "eg3d":
        jp = p if p.is_file() else p / "dataset.json"
        return load_eg3d_scene(jp, resolution, scene_id=jp.parent.name)
    return load_transforms_scene(p, resolution)
