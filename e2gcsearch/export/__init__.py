"""Take a chosen network away: a standalone PyTorch builder (``.py``) written from a template, its
ArchConfig (``.json``), or the built model as TorchScript (``.pt``), ``torch.export`` (``.pt2``) or
ONNX (``.onnx``). See :mod:`e2gcsearch.export.writer`.
"""

from __future__ import annotations

from .writer import describe_trial, export_model, export_trial, load_weights, python_source

__all__ = ["describe_trial", "export_model", "export_trial", "load_weights", "python_source"]
