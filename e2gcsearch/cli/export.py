"""``e2gcsearch export``: a trial of a study as a model you can take away.

What it writes depends on the suffix of --out:
  FILE.py    a standalone builder that imports only torch: the stage table of the network and a
             build_model() whose state-dict keys equal e2gcsearch's, with the trial's objectives,
             params, MACs and EPF (and how they were measured) in its docstring
  FILE.json  the ArchConfig: e2gcsearch.create_model(ArchConfig.from_json(open(FILE).read()))
  FILE.pt2   torch.export program: any batch size (1 to 4096), images of the trial's resolution
             (224 x 224 when the trial recorded none); torch.export.load(FILE).module()(images)
  FILE.pt    TorchScript traced at batch 1, FILE.onnx ONNX (needs onnx, onnxscript); same resolution
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..export import export_trial
from ._common import HelpFormatter, note
from .studies import add_study_args, load_study

EXAMPLES = """\
examples:
  e2gcsearch export --trial 7 --out model.py          # then: from model import build_model
  e2gcsearch export --trial 7 --out model.json
  e2gcsearch export --trial 7 --out model.py --weights studies/checkpoints/e2gcsearch/trial-7/last.pt
  e2gcsearch export --trial 7 --out model.pt2 --weights studies/checkpoints/e2gcsearch/trial-7

trial numbers: see 'e2gcsearch front' (first column). --weights with .py also writes FILE.pth, a plain
state dict that build_model(weights="FILE.pth") loads.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="a trial as a standalone PyTorch builder (.py), ArchConfig (.json), TorchScript/ONNX",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_study_args(parser)
    parser.add_argument("--trial", type=int, required=True, metavar="N", help="trial number (see 'e2gcsearch front')")
    parser.add_argument(
        "--out", required=True, metavar="FILE", help="FILE.py, FILE.json, FILE.pt, FILE.pt2 or FILE.onnx"
    )
    parser.add_argument(
        "--weights",
        metavar="CKPT",
        help="checkpoint (or its folder) whose weights to include, e.g. from 'e2gcsearch validate'",
    )
    parser.add_argument("--force", action="store_true", help="overwrite FILE when it exists")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    if Path(args.out).exists() and not args.force:
        raise ConfigError(f"{args.out} exists; pass --force to overwrite it, or choose another --out")
    for path in export_trial(load_study(args), args.trial, args.out, args.weights):
        note(f"wrote {path}")
