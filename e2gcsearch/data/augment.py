"""Augmentation and normalisation of whole batches of uint8 image tensors, on any device.

Random-resized crop and horizontal flip are one affine resampling per batch: every image gets its own
2x3 matrix (crop scale, aspect ratio, position, mirror) and a single ``grid_sample`` call produces the
batch, so augmentation costs a small fraction of a forward pass and needs no worker processes.

Example:
    >>> images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    >>> mean, std = channel_stats(images)
    >>> augment_batch(images, mean, std, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 32, 32])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("rrc", "crop_flip", "none")
RRC_SCALE = (0.35, 1.0)  # share of the image area kept; 0.08 (ImageNet) loses too much at 32-64 px
RRC_RATIO = (3 / 4, 4 / 3)
CROP_SIDE = 0.875  # crop_flip: side of the random square crop as a share of the image side


def channel_stats(images: torch.Tensor, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (0-255 units, float32 ``(3,)``) of uint8 images ``(N, 3, R, R)``."""
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].to(torch.float64)
        total += block.sum(dim=(0, 2, 3))
        total_sq += block.square().sum(dim=(0, 2, 3))
    count = max(1, images.shape[0] * images.shape[2] * images.shape[3])
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1.0).sqrt()  # >= 1 grey level: no division by ~0
    return mean.float(), std.float()


def normalize_batch(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, R, R)`` → float32 ``(images - mean) / std`` per channel."""
    scale = (1.0 / std).to(images.device).view(1, 3, 1, 1)
    shift = (-mean / std).to(images.device).view(1, 3, 1, 1)
    return images.float().mul_(scale).add_(shift)


def _affine_params(batch: int, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Per-image 2x3 matrices mapping output coordinates to input coordinates (both in [-1, 1])."""
    u = torch.rand((batch, 5), generator=generator)
    if mode == "rrc":
        area = RRC_SCALE[0] + (RRC_SCALE[1] - RRC_SCALE[0]) * u[:, 0]
        log_lo, log_hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
        ratio = torch.exp(log_lo + (log_hi - log_lo) * u[:, 1])
        crop_w = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width / image width
        crop_h = torch.sqrt(area / ratio).clamp(max=1.0)
    else:  # crop_flip: a fixed-size square crop at a random position
        crop_w = crop_h = torch.full((batch,), CROP_SIDE)
    centre_x = (1.0 - crop_w) * (2.0 * u[:, 2] - 1.0)  # keeps the crop inside the image
    centre_y = (1.0 - crop_h) * (2.0 * u[:, 3] - 1.0)
    mirror = torch.where(u[:, 4] < 0.5, -1.0, 1.0)
    theta = torch.zeros((batch, 2, 3))
    theta[:, 0, 0] = crop_w * mirror
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = crop_h
    theta[:, 1, 2] = centre_y
    return theta


def augment_batch(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator, mode: str = "rrc"
) -> torch.Tensor:
    """Normalised, augmented float32 batch from uint8 ``images`` ``(B, 3, R, R)``.

    Args:
        images: uint8 batch on the training device.
        mean: per-channel mean from :func:`channel_stats`.
        std: per-channel std from :func:`channel_stats`.
        generator: a CPU generator; it alone decides the crops and flips (reproducible runs).
        mode: ``rrc`` (random-resized crop + flip), ``crop_flip`` (87.5 % square crop + flip) or
            ``none``.
    """
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {mode!r}; choose one of {', '.join(AUGMENTATIONS)}")
    x = normalize_batch(images, mean, std)  # (B, 3, R, R) float32
    if mode == "none":
        return x
    theta = _affine_params(x.shape[0], mode, generator).to(x.device, non_blocking=True)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, R, R, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
