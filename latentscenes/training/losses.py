"""Loss terms of 3Da-AE (paper Eq. 1-5) and the tri-plane total variation of the authors' code."""

from __future__ import annotations

from typing import Literal

import torch


def recon_loss(pred: torch.Tensor, target: torch.Tensor, kind: Literal["mse", "l1"] = "mse") -> torch.Tensor:
    """Mean reconstruction error used by L_ae, L_Enc and L_Dec (Eq. 5).

    The paper prints a norm ``||.||``; Alg. 1 writes it squared (``||.||_2^2``) and the authors' code uses
    ``MSELoss`` (mean over every element), which is ``kind="mse"``. ``kind="l1"`` is the mean absolute error.

    Args:
        pred, target: same shape, e.g. ``[B, C, H, W]`` in [-1, 1].
    Returns:
        scalar tensor.
    Raises:
        ValueError: on a shape mismatch or an unknown ``kind``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"loss: shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    if kind == "mse":
        return torch.mean((pred - target) ** 2)
    if kind == "l1":
        return torch.mean((pred - target).abs())
    raise ValueError(f"unknown loss kind {kind!r} (mse or l1)")


def triplane_tv(planes: torch.Tensor, mode: Literal["l2", "l1"] = "l2") -> torch.Tensor:
    """Total variation of a batch of tri-planes, as in the authors' code (3da-ae-spec Sec. 1.2).

    ``TV = [sum (t[..., i+1, j] - t[..., i, j])^p + sum (t[..., i, j+1] - t[..., i, j])^p] / (H + W)``, summed
    over the batch, the 3 planes and the F channels (no averaging), p = 2 (``l2``) or |.| (``l1``).

    Args:
        planes: ``[B, 3, F, H, W]`` (the fused local+global planes of the batch).
    Returns:
        scalar tensor.
    """
    dh = planes[..., 1:, :] - planes[..., :-1, :]
    dw = planes[..., :, 1:] - planes[..., :, :-1]
    if mode == "l2":
        s = (dh**2).sum() + (dw**2).sum()
    elif mode == "l1":
        s = dh.abs().sum() + dw.abs().sum()
    else:
        raise ValueError(f"unknown tv mode {mode!r} (l2 or l1)")
    return s / (planes.shape[-1] + planes.shape[-2])


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; the stage stopped and its last good checkpoint is kept.

    Attributes:
        stage: stage name; step: the failing step (0-based); terms: the loss terms at that step.
    """

    def __init__(self, stage: str, step: int, terms: dict[str, float], checkpoint: str | None) -> None:
        self.stage, self.step, self.terms, self.checkpoint = stage, step, terms, checkpoint
        where = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was written yet"
        super().__init__(
            f"stage {stage!r}: non-finite loss at step {step} ({', '.join(f'{k}={v}' for k, v in terms.items())}); "
            f"stopped without updating the parameters; {where}. Lower the learning rates or check the data."
        )
