"""The tiny shared MLP that turns tri-plane features into density and colour (docs/rendering.md)."""

from __future__ import annotations

import torch
from torch import nn

# MipNeRF's widened sigmoid: colours may reach just past [0, 1] so that pure black/white are attainable
# without infinite logits (as the authors' decoder: sigmoid * 1.002 - 0.001).
COLOUR_PAD = 0.001


class TriplaneDecoder(nn.Module):
    """``Linear(F, hidden) -> Softplus -> Linear(hidden, 1 + C)`` (paper Sec. 3.1; the authors' "OSGDecoder").

    No positional encoding and no view direction, as in the paper. PyTorch default initialisation.

    Args:
        in_features: F, tri-plane feature size (> 0).
        out_channels: C, colour channels (3 for RGB, 4 for SD latents).
        hidden: width of the hidden layer (paper: 64).
    """

    def __init__(self, in_features: int, out_channels: int, hidden: int = 64) -> None:
        super().__init__()
        if in_features < 1 or out_channels < 1 or hidden < 1:
            raise ValueError(f"bad decoder sizes F={in_features} C={out_channels} hidden={hidden}")
        self.in_features = in_features
        self.out_channels = out_channels
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.Softplus(), nn.Linear(hidden, 1 + out_channels))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode features.

        Args:
            features: ``[..., F]``.
        Returns:
            ``(raw_density [..., 1], colour [..., C])``: ``raw_density`` is un-activated (the compositor applies
            softplus(raw - 1)); ``colour = sigmoid(.) * 1.002 - 0.001`` lies in (-0.001, 1.001) (the [0,1]
            "pre-scale" space of the renderer).
        """
        out = self.net(features)
        colour = torch.sigmoid(out[..., 1:]) * (1 + 2 * COLOUR_PAD) - COLOUR_PAD
        return out[..., :1], colour
