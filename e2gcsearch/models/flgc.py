"""FLGC — fully learnable group convolution (Wang et al., CVPR 2019) — and its deployment.

Training form: :class:`LearnedGroupConv2d` holds a dense k x k weight (C_out, C_in, k, k) and two
assignment logits, ``in_logits`` (C_in, g) for the input channels and ``out_logits`` (C_out, g) for the
filters. The forward turns each into a hard one-hot assignment S (C, g) and convolves with the weight
masked by ``S_out @ S_in.T`` (filter o sees input channel i only when both sit in the same group); the
backward passes the gradient of the soft assignment P straight through (``S = H + (P - P.detach())``,
which equals H exactly in the forward).

Two assignments:

* **balanced** (the default): P is the softmax of the logits, Sinkhorn-normalised so that every row sums
  to 1 and every column to C / g; H gives each group exactly C / g channels (a capacity-constrained
  greedy on P, :func:`balanced_groups`). The learned structure is then a permutation of a standard
  grouped conv: :func:`deploy` folds the permutations into the neighbouring 1x1 convs and BatchNorms
  and leaves a plain ``nn.Conv2d(groups=g)`` — the network E2GC/FgGC would build, at zero runtime cost.
* **uneven** (``ArchConfig(uneven=True)``, ``--flgc-uneven``): the paper's free argmax of the softmax;
  groups get any size (even none), so the deployed layer is one conv per non-empty group
  (:class:`SplitGroupConv2d`): its MACs depend on what was learned (sum over groups of C_out,k · C_in,k),
  and it runs g small convs and a concatenation instead of one grouped kernel.

Choices, and why:

* Logits start as N(0, 0.01²): small, so the assignment can move freely early in training, when the
  gradients say which channels belong together; a random balanced assignment is, in distribution,
  the standard grouped conv (the 1x1 neighbours are dense and i.i.d.-initialised), so FLGC starts
  from the same point as FgGC with the same g.
* Temperature 1 and no extra regularisation: the trainer's weight decay (4e-5) also pulls the logits
  slowly back towards 0, which keeps the assignment revisable late in training; nothing else is needed
  to keep groups balanced in the default mode, since balance is enforced, not encouraged.
* The dense weight is initialised like every conv (He, fan-out: the same std as the grouped conv's);
  weights outside a channel's current group get no gradient and only decay until the channel joins.
* :func:`load_structure` sets the logits to ``STRUCTURE_LOGIT`` on a stored assignment (softmax ≈ 0.74
  on it at g = 8). In principle training can still revise it; measured (MobileNet-V1 w=0.25,
  food101-mini, 30 epochs from a proxy's groups) no channel moved, so in practice the stored
  structure stays fixed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

BALANCED, UNEVEN = "balanced", "uneven"
LOGIT_INIT_STD = 0.01
TEMPERATURE = 1.0
SINKHORN_ITERATIONS = 8
STRUCTURE_LOGIT = 3.0

Structure = dict[str, dict[str, list[int]]]  # layer name -> {"in": group of each input channel, "out": of each filter}


def sinkhorn(
    logits: torch.Tensor, iterations: int = SINKHORN_ITERATIONS, temperature: float = TEMPERATURE
) -> torch.Tensor:
    """Soft balanced assignment (C, g): softmax of ``logits / temperature`` alternately rescaled so that
    every column sums to C / g and every row to 1 (rows last, so each channel's row is a distribution)."""
    channels, groups = logits.shape
    log_p = logits / temperature
    log_capacity = math.log(channels / groups)
    for _ in range(iterations):
        log_p = log_p - torch.logsumexp(log_p, dim=0, keepdim=True) + log_capacity
        log_p = log_p - torch.logsumexp(log_p, dim=1, keepdim=True)
    return log_p.exp()


def balanced_groups(scores: torch.Tensor) -> torch.Tensor:
    """Group of every channel (C,), each of the g groups getting exactly C / g, preferring high ``scores`` (C, g).

    Capacity-constrained greedy in rounds: every unplaced channel proposes its best group that still
    has room; a group accepts its highest-scoring proposers up to its room and refuses the rest, which
    propose again next round. A group that refuses anyone is full afterwards, so it takes at most g + 1
    rounds; each round is a few vectorised tensor operations.
    """
    channels, groups = scores.shape
    if channels % groups:
        raise ConfigError(f"{groups} balanced groups cannot split {channels} channels; use a g that divides them")
    scores = scores.detach().float()
    room = torch.full((groups,), channels // groups, dtype=torch.long, device=scores.device)
    group_of = torch.full((channels,), -1, dtype=torch.long, device=scores.device)
    while True:
        open_rows = (group_of < 0).nonzero().squeeze(1)
        if open_rows.numel() == 0:
            return group_of
        masked = scores[open_rows].masked_fill((room == 0)[None, :], -math.inf)
        best_score, best = masked.max(dim=1)
        order = torch.argsort(best_score, descending=True, stable=True)
        order = order[torch.argsort(best[order], stable=True)]  # by group, best score first within a group
        ranked_groups = best[order]
        first = torch.searchsorted(ranked_groups, ranked_groups, right=False)
        rank = torch.arange(order.numel(), device=scores.device) - first
        accepted = order[rank < room[ranked_groups]]
        group_of[open_rows[accepted]] = best[accepted]
        room -= torch.bincount(best[accepted], minlength=groups)


class LearnedGroupConv2d(nn.Conv2d):
    """FLGC training form: a dense bias-free k x k conv whose weight is masked by learned groups.

    Args:
        in_channels, out_channels, kernel_size, stride: as ``nn.Conv2d`` ('same' padding, no bias).
        groups: number of learned groups g.
        assignment: ``"balanced"`` (exactly C / g channels and filters per group) or ``"uneven"`` (free).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        assignment: str = BALANCED,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        if assignment not in (BALANCED, UNEVEN):
            raise ValueError(f"assignment must be {BALANCED!r} or {UNEVEN!r}, got {assignment!r}")
        self.num_groups, self.assignment = groups, assignment
        self.in_logits = nn.Parameter(torch.empty(in_channels, groups))
        self.out_logits = nn.Parameter(torch.empty(out_channels, groups))
        if not self.in_logits.is_meta:
            nn.init.normal_(self.in_logits, 0.0, LOGIT_INIT_STD)
            nn.init.normal_(self.out_logits, 0.0, LOGIT_INIT_STD)

    def _soft(self, logits: torch.Tensor) -> torch.Tensor:
        if self.assignment == BALANCED:
            return sinkhorn(logits)
        return torch.softmax(logits / TEMPERATURE, dim=1)

    def _groups_of(self, soft: torch.Tensor) -> torch.Tensor:
        return balanced_groups(soft) if self.assignment == BALANCED else soft.detach().argmax(dim=1)

    def assignment_matrix(self, logits: torch.Tensor) -> torch.Tensor:
        """Hard one-hot (C, g) in the forward, the soft assignment's gradient in the backward."""
        soft = self._soft(logits)
        hard = F.one_hot(self._groups_of(soft), self.num_groups).to(soft.dtype)
        return hard + (soft - soft.detach())  # == hard exactly; d/dlogits == d soft/dlogits

    def group_indices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current hard assignment: (group of each input channel (C_in,), group of each filter (C_out,))."""
        with torch.no_grad():
            return (self._groups_of(self._soft(self.in_logits)), self._groups_of(self._soft(self.out_logits)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.assignment_matrix(self.out_logits) @ self.assignment_matrix(self.in_logits).T  # (C_out, C_in)
        weight = self.weight * mask.to(self.weight.dtype)[:, :, None, None]
        return F.conv2d(x, weight, None, self.stride, self.padding)  # (B, C_out, H/s, W/s)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", learned_groups={self.num_groups}, assignment={self.assignment}"


class SplitGroupConv2d(nn.Module):
    """Deployed uneven FLGC: input split into groups of the learned sizes, one conv per group, concatenated.

    A group with filters but no input channels outputs zeros (its filters see nothing); a group with
    input channels but no filters drops them.
    """

    def __init__(self, in_sizes: list[int], out_sizes: list[int], kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.in_sizes, self.out_sizes, self.kernel_size, self.stride = (
            list(in_sizes),
            list(out_sizes),
            kernel_size,
            stride,
        )
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
            for i, o in zip(in_sizes, out_sizes)
            if i and o
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces, convs = [], iter(self.convs)
        size = (x.shape[-2] - 1) // self.stride + 1, (x.shape[-1] - 1) // self.stride + 1  # 'same' padding, odd k
        for part, out in zip(torch.split(x, self.in_sizes, dim=1), self.out_sizes):
            if not out:
                continue
            if part.shape[1]:
                pieces.append(next(convs)(part))
            else:
                pieces.append(x.new_zeros(x.shape[0], out, *size))
        return torch.cat(pieces, dim=1)  # (B, C_out, H/s, W/s)


@dataclasses.dataclass(frozen=True)
class FoldSite:
    """Where a learned grouped conv sits: ``getattr(owner, name)`` is the layer; ``producer`` (conv, BN)
    makes its input channels and ``consumer`` (BN, conv) reads its output channels, each channel by
    channel (a ReLU may sit between), so permutations of the layer's channels fold into them."""

    owner: nn.Module
    name: str
    producer: tuple[nn.Conv2d, nn.BatchNorm2d]
    consumer: tuple[nn.BatchNorm2d, nn.Conv2d]

    @property
    def layer(self) -> nn.Module:
        return getattr(self.owner, self.name)


def learned_layers(model: nn.Module) -> Iterator[tuple[str, LearnedGroupConv2d]]:
    """(name, layer) of every FLGC training-form layer of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, LearnedGroupConv2d):
            yield name, module


def learned_structure(model: nn.Module) -> Structure | None:
    """The hard assignment of every FLGC layer (group index per input channel and per filter), as plain
    lists for JSON; ``None`` when the model has none. With balanced groups this is a permutation of a
    standard grouped conv's channels: sorting the channels by group (stably) gives it."""
    found = {
        name: {"in": ins.tolist(), "out": outs.tolist()}
        for name, layer in learned_layers(model)
        for ins, outs in [layer.group_indices()]
    }
    return found or None


def load_structure(model: nn.Module, structure: Structure) -> None:
    """Set the logits of ``model``'s FLGC layers so that their assignment is ``structure``
    (:data:`STRUCTURE_LOGIT` on the stored group, 0 elsewhere): training continues from it."""
    layers = dict(learned_layers(model))
    if set(layers) != set(structure):
        raise ConfigError(
            f"the stored FLGC structure names layers {sorted(structure)[:3]}…, the network has "
            f"{sorted(layers)[:3]}…; it belongs to another network"
        )
    with torch.no_grad():
        for name, layer in layers.items():
            for logits, key in ((layer.in_logits, "in"), (layer.out_logits, "out")):
                groups = torch.as_tensor(structure[name][key], dtype=torch.long, device=logits.device)
                if groups.shape != logits.shape[:1] or int(groups.max()) >= layer.num_groups:
                    raise ConfigError(
                        f"the stored FLGC structure of {name} does not fit its {tuple(logits.shape)} "
                        "assignment; it belongs to another network"
                    )
                logits.copy_(F.one_hot(groups, layer.num_groups).to(logits.dtype) * STRUCTURE_LOGIT)


def _permute_channels(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    """Reorder the channels of ``bn`` (affine parameters and running statistics) by ``order``."""
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        if tensor is not None:
            tensor.copy_(tensor[order])


def _deployed_layer(
    layer: LearnedGroupConv2d,
    in_groups: torch.Tensor,
    out_groups: torch.Tensor,
    in_order: torch.Tensor,
    out_order: torch.Tensor,
) -> nn.Module:
    """The grouped conv (balanced) or per-group convs (uneven) whose channels are sorted by group."""
    weight = layer.weight[out_order][:, in_order]  # (C_out, C_in, k, k), both sides sorted by group
    in_sizes = torch.bincount(in_groups, minlength=layer.num_groups).tolist()
    out_sizes = torch.bincount(out_groups, minlength=layer.num_groups).tolist()
    in_starts = [0, *torch.tensor(in_sizes).cumsum(0).tolist()]
    out_starts = [0, *torch.tensor(out_sizes).cumsum(0).tolist()]
    blocks = [
        weight[out_starts[k] : out_starts[k + 1], in_starts[k] : in_starts[k + 1]] for k in range(layer.num_groups)
    ]
    kernel, stride = layer.kernel_size[0], layer.stride[0]
    if layer.assignment == BALANCED:
        deployed = nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            kernel,
            stride=stride,
            padding=kernel // 2,
            groups=layer.num_groups,
            bias=False,
        )
        deployed.weight.copy_(torch.cat(blocks))  # (C_out, C_in / g, k, k)
    else:
        deployed = SplitGroupConv2d(in_sizes, out_sizes, kernel, stride)
        for conv, block in zip(deployed.convs, (b for b in blocks if b.numel())):
            conv.weight.copy_(block)
    return deployed.to(device=layer.weight.device, dtype=layer.weight.dtype)


def deploy(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The trained FLGC ``model`` as a plain network (a copy unless ``inplace``), computing the same outputs.

    Each :class:`LearnedGroupConv2d` becomes a grouped conv over its channels sorted by group; the
    producer's output channels (conv rows, BN) are sorted the same way and the consumer's BN and conv
    columns follow the layer's sorted filters, so no permutation runs at inference. A model without FLGC
    layers is returned as it is. The model says where its layers sit with a ``fold_sites()`` method.
    """
    if next(learned_layers(model), None) is None:
        return model
    sites = getattr(model, "fold_sites", None)
    if sites is None:
        raise ConfigError(f"{type(model).__name__} has FLGC layers but no fold_sites(); it cannot be deployed")
    model = model if inplace else copy.deepcopy(model)
    with torch.no_grad():
        for site in model.fold_sites():
            layer = site.layer
            if not isinstance(layer, LearnedGroupConv2d):
                continue
            in_groups, out_groups = layer.group_indices()
            in_order, out_order = torch.argsort(in_groups, stable=True), torch.argsort(out_groups, stable=True)
            producer_conv, producer_bn = site.producer
            producer_conv.weight.copy_(producer_conv.weight[in_order])  # its output channels = our inputs
            _permute_channels(producer_bn, in_order)
            consumer_bn, consumer_conv = site.consumer
            _permute_channels(consumer_bn, out_order)
            consumer_conv.weight.copy_(consumer_conv.weight[:, out_order])  # its input channels = our filters
            setattr(site.owner, site.name, _deployed_layer(layer, in_groups, out_groups, in_order, out_order))
    if next(learned_layers(model), None) is not None:
        raise ConfigError(f"{type(model).__name__}.fold_sites() misses some FLGC layers; they cannot be deployed")
    return model


__all__ = [
    "BALANCED",
    "UNEVEN",
    "FoldSite",
    "LearnedGroupConv2d",
    "SplitGroupConv2d",
    "balanced_groups",
    "deploy",
    "learned_layers",
    "learned_structure",
    "load_structure",
    "sinkhorn",
]
