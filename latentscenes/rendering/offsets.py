"""Views at sub-latent-pixel offsets: the cameras, and the merge of images decoded from them.

A latent pixel stands for a ``ds x ds`` block of the image (``ds`` = 8 for the SD-style autoencoder). Moving a
camera's principal point by ``(-ox / W, -oy / H)`` moves its image ``ox`` pixels left and ``oy`` pixels up, so
the latent grid of the moved view samples the scene between the original latent pixels. Two uses:

* training and exploit (``data.shift_grid``, :func:`latentscenes.training.data.shift_views`): every train view
  also at ``g x g`` offsets gives ``g^2`` times the latent targets per view (docs/fidelity.md);
* rendering (``render.offset_ensemble``, :func:`latentscenes.evaluation.model.render_decoded`): a latent scene
  rendered at the same ``g x g`` offsets, each render decoded, moved back and averaged. The decoder upsamples
  8x from a coarse grid and is not shift-equivariant; averaging its outputs over the offsets the field was
  trained on gives +0.6-0.7 dB held-out on new airliners and cars (docs/fidelity.md, sixth session).

The offsets ``(ox, oy)``, in image pixels, are ``(k * ds / g, l * ds / g)`` for ``l, k < g``, in row-major
``(l, k)`` order; copy 0 is the view itself. Everything here is pure (no state, no autograd needed).
"""

from __future__ import annotations

import torch


def pixel_offsets(grid: int, downsample: int) -> list[tuple[int, int]]:
    """The ``grid x grid`` offsets ``(ox, oy)`` in image pixels, copy 0 = ``(0, 0)``, in ``(l, k)`` order.

    Raises:
        ValueError: ``grid < 1`` or ``downsample`` not a multiple of ``grid``.
    """
    if grid < 1 or downsample % grid:
        raise ValueError(f"the offset grid must be >= 1 and divide the downsampling factor {downsample}, got {grid}")
    step = downsample // grid
    return [(ox, oy) for oy in range(0, downsample, step) for ox in range(0, downsample, step)]


def offset_intrinsics(K: torch.Tensor, grid: int, downsample: int, image_hw: tuple[int, int]) -> torch.Tensor:
    """The intrinsics of every view at every offset.

    Args:
        K: ``[V, 3, 3]`` intrinsics normalised by the image size (OpenCV; cx/W, cy/H).
        grid: g >= 1, offsets per axis; downsample: the autoencoder's factor (a multiple of g).
        image_hw: (H, W) of the images in pixels (the offsets are whole image pixels).
    Returns:
        ``[g^2 * V, 3, 3]``, copy-major: rows ``c * V .. (c + 1) * V`` hold copy ``c`` of
        :func:`pixel_offsets`, whose principal point is moved by ``(-ox / W, -oy / H)``.
    Raises:
        ValueError: a bad ``grid`` (see :func:`pixel_offsets`) or ``K`` not ``[V, 3, 3]``.
    """
    if K.dim() != 3 or K.shape[-2:] != (3, 3):
        raise ValueError(f"K must be [V,3,3], got {tuple(K.shape)}")
    H, W = image_hw
    out = []
    for ox, oy in pixel_offsets(grid, downsample):
        Kc = K.clone()
        Kc[:, 0, 2] -= ox / W
        Kc[:, 1, 2] -= oy / H
        out.append(Kc)
    return torch.cat(out)


def merge_offset_images(images: torch.Tensor, grid: int, downsample: int) -> torch.Tensor:
    """Average images rendered (or decoded) at the offsets of :func:`offset_intrinsics`, each moved back.

    Copy ``(ox, oy)`` shows the scene moved ``ox`` pixels left and ``oy`` up: its pixel ``(i, j)`` estimates the
    view's pixel ``(i + oy, j + ox)``. Every output pixel is the mean of the copies that cover it (all ``g^2`` in
    the interior; the left / top ``ds - ds / g`` pixel border has fewer, down to copy 0 alone at the corner).

    Args:
        images: ``[g^2 * V, C, H, W]`` copy-major, as the cameras of :func:`offset_intrinsics`.
        grid, downsample: as there.
    Returns:
        ``[V, C, H, W]``, same dtype and device.
    Raises:
        ValueError: the batch is not a multiple of ``g^2``, or an offset is not smaller than the image.
    """
    offsets = pixel_offsets(grid, downsample)
    n = len(offsets)
    if images.dim() != 4 or images.shape[0] % n:
        raise ValueError(f"expected [{n} * V, C, H, W] images for a {grid}x{grid} offset grid, got {tuple(images.shape)}")
    V, (H, W) = images.shape[0] // n, images.shape[-2:]
    if n == 1:
        return images
    if max(max(o) for o in offsets) >= min(H, W):
        raise ValueError(f"offsets up to {downsample - downsample // grid} px need images larger than {H}x{W}")
    acc = torch.zeros_like(images[:V])
    count = torch.zeros((1, 1, H, W), dtype=images.dtype, device=images.device)
    for c, (ox, oy) in enumerate(offsets):
        acc[:, :, oy:, ox:] += images[c * V : (c + 1) * V, :, : H - oy, : W - ox]
        count[:, :, oy:, ox:] += 1
    return acc / count
