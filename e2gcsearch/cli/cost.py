"""``e2gcsearch cost``: params, MACs, activations and arithmetic intensity of one network."""

from __future__ import annotations

import argparse

import pandas as pd

from ..cost import network_cost
from ..models import layer_notes
from ..report.tables import fixed, human_count, render, to_json
from ._common import HelpFormatter, emit
from .configs import arch_config_from
from .options import MODEL, OUTPUT, add_option, add_options

EXAMPLES = """\
examples:
  e2gcsearch cost mobilenet_v1 --group-size 1               # stock MobileNet-V1: 4.21 M params, 568.74 M MACs
  e2gcsearch cost resnext50 --groups 32 --per-layer         # every conv/linear layer of stock ResNeXt-50
  e2gcsearch cost mobilenet_v1 -G 8 --width 0.5 --resolution 112 --format json
  e2gcsearch cost regnet_y_400mf -G 16 --per-layer           # torchvision's RegNetY-400MF, each layer: rewritten or left
  e2gcsearch cost mypkg.models:build_net -G 4                # your own network (a factory num_classes -> nn.Module)

counting: MACs and params of conv + linear layers only (FC bias included, BN reported apart);
activations = input + output elements of each layer; AI = MACs / (params + activations).
networks built by torchvision or your factory: every conv with groups > 1 gets G or g; dense convs
(stem, 1x1, squeeze-excitation) and linear layers are left; a G or g that does not divide is refused.
"""

LAYER_COLUMNS = [
    "name",
    "kind",
    "in_channels",
    "out_channels",
    "kernel",
    "stride",
    "groups",
    "group_size",
    "out_h",
    "out_w",
    "macs",
    "params",
    "activations",
    "ai",
]
FORMATTERS = {
    "params": human_count,
    "macs": human_count,
    "activations": human_count,
    "bn_params": human_count,
    "ai": fixed(2),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cost",
        help="params, MACs, activations and AI of one network (per layer on request)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_options(parser, MODEL, OUTPUT)
    add_option(parser, "per_layer")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    cost = network_cost(arch_config_from(args), resolution=args.resolution)
    summary = pd.DataFrame([cost.summary()])
    layers = pd.DataFrame([layer.to_dict() for layer in cost.layers], columns=LAYER_COLUMNS)
    notes = layer_notes(cost.arch_config)
    if notes:  # a regrouped network: say what happened to every layer
        layers["grouping"] = [notes.get(name, "left: not grouped") for name in layers["name"]]
    if args.format == "json":
        document = {"summary": cost.summary(), "config": cost.arch_config.to_dict()}
        if args.per_layer:
            document["layers"] = layers.to_dict(orient="records")
        emit(to_json(document))
    elif args.format == "csv":
        emit(render(layers if args.per_layer else summary, "csv"))
    else:
        emit(render(summary, args.format, FORMATTERS))
        if args.per_layer:
            emit("")
            emit(render(layers, args.format, FORMATTERS))
