"""``latentscenes ae finetune``: adapt a pre-trained base autoencoder to the user's own objects.

The base autoencoder is the ceiling of every latent scene learned with it (docs/fidelity.md, "Another category"):
even the general one (``--ae shipped-general``, pre-trained on a mix of categories) reconstructs a category it never
saw 5-6 dB worse than airliners. A few minutes of the pre-training recipe (:mod:`latentscenes.autoencoder.pretrain`)
on the train-split views of the user's train-split scenes, started from the general weights (the default; the
airliner-only ``shipped`` ones with ``--ae shipped``) with a lower learning rate, recovers part of it.
The held-out views are measured before and after, so the user sees what the fine-tune bought.

Held-out views: the test views of the dataset's ``exploit`` scenes when it has them (objects never used for the
fine-tune), else the test views of its train scenes (other views of objects it was fine-tuned on; the report
says which).

Run folder: what ``ae pretrain`` writes (``config.json``, ``checkpoint.safetensors``, ``ae.safetensors``,
``metrics.jsonl``, ``summary.json``; ``--resume`` continues exactly) plus ``finetune.json``: the before / after
figures at each resolution, the held-out views used and the training images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentscenes.autoencoder.data import load_dataset_views
from latentscenes.autoencoder.evaluate import evaluate_on_dataset
from latentscenes.autoencoder.model import load_autoencoder
from latentscenes.autoencoder.pretrain import PretrainConfig, pretrain
from latentscenes.data import MultiSceneDataset
from latentscenes.utils.io import atomic_write_text

#: The figures compared before and after (``evaluate_on_dataset``'s keys).
METRICS = ("psnr", "ssim", "chroma_err")


@dataclass(frozen=True)
class HeldOut:
    """Which views measure the fine-tune: ``scenes`` split (``exploit`` or ``train``), their test views."""

    scenes: str
    max_scenes: int

    @property
    def description(self) -> str:
        if self.scenes == "exploit":
            return "test views of exploit-split scenes (objects not used for the fine-tune)"
        return "test views of train-split scenes (other views of the objects used for the fine-tune)"


def held_out_views(data: str | Path, max_scenes: int) -> HeldOut:
    """The exploit split's test views when the dataset has exploit scenes, else the train split's.

    Raises:
        DatasetError / FileNotFoundError: the dataset cannot be read (the message names the folder).
    """
    ds = MultiSceneDataset(data)
    return HeldOut("exploit" if list(ds.split_scene_ids("exploit")) else "train", max_scenes)


def _measure(ae, data: str | Path, held: HeldOut, resolutions: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    out = {}
    for res in resolutions:
        r = evaluate_on_dataset(ae, data, held.scenes, "test", res, held.max_scenes)
        out[str(res)] = {k: r[k] for k in (*METRICS, "n_scenes", "n_views")}
    return out


def finetune_autoencoder(
    cfg: PretrainConfig,
    data: str | Path,
    out_dir: str | Path,
    *,
    resolutions: tuple[int, ...] = (64, 128),
    max_scenes: int = 0,
    views_per_scene: int = 0,
    eval_scenes: int = 16,
    resume: bool = False,
    device: str | torch.device = "cpu",
    provenance: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``cfg.ae`` (usually the shipped general base autoencoder) on a dataset's train views; measure before/after.

    Args:
        cfg: the recipe (preset ``finetune``: lr 5e-4, half the crops 2x down-scaled, from ``ae.source``).
        data: a multi-scene dataset folder (SRN / transforms.json layouts, ``latentscenes.data``).
        out_dir: run folder (see the module docstring); resumes from it when ``resume``.
        resolutions: square image sides (px) at which the held-out views are measured.
        max_scenes / views_per_scene: subsample the training images (0 = all).
        eval_scenes: held-out scenes measured (a seeded subset; 0 = all).
    Returns:
        the report also written to ``out_dir/finetune.json``: ``{"before", "after", "change"}`` each
        ``{resolution: {"psnr" (dB), "ssim" ([0, 1]), "chroma_err" ([0, 1], lower is better), ...}}``,
        ``"held_out"``, ``"train_images"``, ``"steps"``, ``"wall_s"``, ``"ae"`` (the written weights).
    Raises:
        DatasetError / FileNotFoundError: unreadable dataset; PretrainError: NaN loss or incompatible resume
        (the last checkpoint is kept); AutoencoderError: unreadable starting weights.
    """
    out = Path(out_dir)
    report_path = out / "finetune.json"
    held = held_out_views(data, eval_scenes)
    train_u8, owners = load_dataset_views(data, "train", "train", max_scenes, views_per_scene, seed=cfg.seed,
                                          progress=show_progress)
    eval_u8, _ = load_dataset_views(data, held.scenes, "test", min(eval_scenes or 8, 8), 0, seed=cfg.seed,
                                    progress=False)
    # The "before" figures of a resumed run are those measured when it started (the starting weights may be a
    # file the user has since replaced).
    before = None
    if resume and report_path.is_file():
        before = json.loads(report_path.read_text()).get("before")
    if before is None:
        before = _measure(load_autoencoder(cfg.ae, device).eval(), data, held, resolutions)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(report_path, json.dumps({"status": "running", "before": before}, indent=2) + "\n")
    model, summary = pretrain(cfg, train_u8, eval_u8, out, resume=resume, device=device, provenance=provenance,
                              show_progress=show_progress)
    after = _measure(model, data, held, resolutions)
    report = {
        "status": "done",
        "data": str(data),
        "start": {"source": cfg.ae.source, "path": None if cfg.ae.path is None else str(cfg.ae.path)},
        "held_out": {"scenes": held.scenes, "views": "test", "max_scenes": held.max_scenes,
                     "description": held.description},
        "train_images": {"n": int(train_u8.shape[0]), "scenes": len(set(owners)),
                         "size": list(train_u8.shape[-2:])},
        "steps": summary["steps"], "wall_s": summary["wall_s"],
        "before": before, "after": after,
        "change": {res: {k: after[res][k] - before[res][k] for k in METRICS} for res in after if res in before},
        "ae": str(out / "ae.safetensors"),
    }
    atomic_write_text(report_path, json.dumps(report, indent=2) + "\n")
    return report


__all__ = ["HeldOut", "held_out_views", "finetune_autoencoder", "METRICS"]
