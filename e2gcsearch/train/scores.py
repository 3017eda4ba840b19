"""Training-free scores: rank networks at initialisation, in seconds, without training them.

Each score takes a freshly initialised network and one minibatch of training images and returns a
number that is meant to grow with the accuracy the network would reach after training. Whether it
does on a given dataset is an empirical question that ``benchmarks/proxy_fidelity.py`` answers against
full training (and against params and MACs, the baselines every such score must beat); the docs'
"How sure is the front" page has the figures for food101-10.

Only conv and linear weights are scored (the parameters the counting conventions count); BatchNorm
affine parameters are left out, as in the papers' reference code.

Example:
    >>> import torch
    >>> from torch import nn
    >>> layer = nn.Linear(3, 2, bias=False)
    >>> _ = layer.weight.data.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
    >>> synflow(layer, torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))  # sum of |w|: 1+2+0.5+0+3+1
    7.5
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional

from ..config import ArchConfig
from ..data import LoadedData
from ..data.augment import channel_stats, normalize_batch
from .runtime import build_model, derived_seed

ScoreFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
SCORED = (nn.Conv2d, nn.Linear)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [module.weight for module in model.modules() if isinstance(module, SCORED)]


def _loss_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of the cross-entropy of one minibatch (train mode) with respect to each scored weight."""
    model.train()
    model.zero_grad(set_to_none=True)
    functional.cross_entropy(model(images), labels).backward()
    return [weight.grad if weight.grad is not None else torch.zeros_like(weight) for weight in _weights(model)]


@torch.no_grad()
def _restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(state)


def synflow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """SynFlow: sum over weights of |w * dR/dw|, R = sum of the outputs of the network with every weight
    replaced by its absolute value, on an all-ones input, in float64 (Tanaka et al., "Pruning neural
    networks without any data by iteratively conserving synaptic flow", NeurIPS 2020; used as a NAS score
    by Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021). Needs no data or labels:
    ``images`` gives only the input shape. BatchNorm is in eval mode, at initialisation an identity.
    The network is left as it was."""
    state = {key: value.clone() for key, value in model.state_dict().items()}
    training = model.training
    try:
        model.double().eval()
        with torch.no_grad():
            for weight in _weights(model):
                weight.abs_()
        model.zero_grad(set_to_none=True)
        ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
        model(ones).sum().backward()
        return float(
            sum((weight.detach() * weight.grad).abs().sum() for weight in _weights(model) if weight.grad is not None)
        )
    finally:
        model.float().train(training)
        model.zero_grad(set_to_none=True)
        _restore(model, state)


def naswot(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """NASWOT: log |det K| of the Hamming kernel of the minibatch's binary ReLU codes, K[i, j] = (number
    of ReLU units) - (Hamming distance between the codes of images i and j) (Mellor et al., "Neural
    Architecture Search without Training", ICML 2021). Networks whose ReLUs cut the inputs apart more
    distinctly score higher. Forward only (train mode, as in the paper); labels are not used."""
    codes: list[torch.Tensor] = []

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        codes.append((output.detach() > 0).flatten(1).to(torch.float64))  # (B, units of this ReLU call)

    hooks = [module.register_forward_hook(record) for module in model.modules() if isinstance(module, nn.ReLU)]
    try:
        model.train()
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    if not codes:
        raise ValueError("NASWOT needs a network with nn.ReLU modules; this one has none")
    code = torch.cat(codes, dim=1)  # (B, N_A)
    kernel = code @ code.T + (1 - code) @ (1 - code).T  # units where two codes agree = N_A - Hamming distance
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Sum over conv and linear weights of the L2 norm of the cross-entropy gradient on one minibatch
    (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021)."""
    return float(sum(gradient.norm() for gradient in _loss_gradients(model, images, labels)))


def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """SNIP saliency summed over conv and linear weights, sum |w * dL/dw| for the cross-entropy L of one
    minibatch (Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR 2019;
    as a NAS score, Abdelfattah et al., ICLR 2021)."""
    gradients = _loss_gradients(model, images, labels)
    return float(sum((weight.detach() * gradient).abs().sum() for weight, gradient in zip(_weights(model), gradients)))


SCORES: dict[str, ScoreFn] = {"synflow": synflow, "naswot": naswot, "grad_norm": grad_norm, "snip": snip}


def score_batch(data: LoadedData, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded minibatch of ``batch`` training images (normalised with the training set's statistics, not
    augmented) and their labels."""
    generator = torch.Generator().manual_seed(derived_seed(seed, "score"))
    index = torch.randperm(data.train_labels.numel(), generator=generator)[:batch]
    mean, std = channel_stats(data.train_images)
    return normalize_batch(data.train_images[index], mean, std), data.train_labels[index]


def score_network(name: str, arch_config: ArchConfig, data: LoadedData, seed: int = 0, batch: int = 64) -> float:
    """Score ``arch_config`` initialised from ``seed`` with the training-free score ``name`` (one of
    :data:`SCORES`) on a minibatch of ``batch`` images of ``data``."""
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}")
    images, labels = score_batch(data, batch, seed)
    model = build_model(arch_config, seed)
    return SCORES[name](model, images, labels)
