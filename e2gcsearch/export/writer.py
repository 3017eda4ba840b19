"""Take a chosen network away: a standalone PyTorch builder (``.py``), its ArchConfig (``.json``), or
the built model as TorchScript (``.pt``), ``torch.export`` (``.pt2``) or ONNX (``.onnx``).

The ``.py`` file imports only torch. It holds the stage table of the network (one row per module or
block, straight from the network's plan; both the rows and the classes' text come from its registry
entry, :class:`e2gcsearch.models.ExportRows`) and a ``build_model`` function whose module names, and
so state-dict keys, are those of e2gcsearch's own models: weights trained by e2gcsearch load directly.
A network built by torchvision (or a user's factory) is written as that constructor call plus its
grouped convs' new groups; the file then imports torchvision (or the factory's package) too, and a
stock-grouping network's state dict is torchvision's, so its pretrained weights load unchanged.
An FLGC network is exported as deployed (:func:`e2gcsearch.models.deploy`): the builder is the standard
grouped network with the same g, and the trained weights (whose learned channel permutations are folded
into the 1x1 convs and BatchNorms) are saved in its layout.

Example:
    >>> export_trial(study, 7, "model.py")                   # doctest: +SKIP
    >>> import model; net = model.build_model()              # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
import warnings
from pathlib import Path
from string import Template

import optuna
import torch
from torch import nn

from ..config import ArchConfig
from ..errors import ConfigError, DataError
from ..models import create_model, deploy, get_entry, load_structure
from ..profiling.implementations import layout_of
from ..report.tables import human_count
from ..store.record import TrialRecord, full_result
from ..store.results import front_info, get_trial, require_architecture, study_objectives, trial_record
from ..store.spending import with_break_even
from ..version import __version__
from . import template

SUFFIXES = {
    ".py": "standalone PyTorch model builder",
    ".json": "ArchConfig JSON",
    ".pt": "TorchScript (traced)",
    ".pt2": "torch.export program",
    ".onnx": "ONNX graph",
}
CHECKPOINT_KEYS = ("model", "state_dict", "model_state_dict")  # where checkpoints keep the weights


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (a state dict, a checkpoint holding one, or a folder with ``last.pt``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise DataError(f"no weights at {path}; pass --weights with a checkpoint file (e.g. .../trial-7/last.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors vary
        raise DataError(
            f"cannot read weights from {path} ({type(exc).__name__}); pass a file written by torch.save"
        ) from None
    for key in CHECKPOINT_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path} holds no state dict (tensors by name); pass a checkpoint of this network")
    return {name.removeprefix("module."): value for name, value in state.items()}


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ConfigError(
            f"the weights in {source} do not fit this trial's network ({first}); "
            "pass the checkpoint of this trial (e.g. studies/checkpoints/<study>/trial-<n>)"
        ) from None


def _fingerprint(record: TrialRecord) -> str:
    keys = ("device_model", "device", "driver", "torch", "dtype", "memory_format", "threads", "meter")
    items = [
        f"{k.replace('_', ' ')} {record.fingerprint[k]}" for k in keys if record.fingerprint.get(k) not in (None, "")
    ]
    return ", ".join(items) or "an unrecorded device"


def _data_summary(data: dict) -> str:
    """'digits, 4 classes, 80 train / 40 val images at 32 px (seed 0)' from a stored data description."""
    if not data:
        return "unrecorded data"
    classes = data.get("num_classes") or len(data.get("classes") or []) or "?"
    return (
        f"{data.get('dataset', '?')}, {classes} classes, {data.get('train_size', '?')} train / "
        f"{data.get('val_size', '?')} val images at {data.get('resolution', '?')} px (seed {data.get('seed', '?')})"
    )


def describe_trial(
    record: TrialRecord,
    objectives: list,
    study: str = "",
    full: dict | None = None,
    front_row: dict | None = None,
    break_even: str | None = None,
) -> list[str]:
    """Sentences about a trial's measured figures (the exported docstring; plain text).

    ``front_row`` (the trial's row of the study's front data) supplies the values pooled over every
    measurement, their 95 % intervals and the front status; without it the trial's own values are used.
    ``break_even`` is a sentence on what the search cost and when choosing this trial pays it back.
    """
    lines = [f"Trial {record.number} of study '{study}'." if study else f"Trial {record.number}."]
    if front_row:
        parts = [
            f"{o.header(record.energy_backend)} = {front_row[o.name]:.4g} (95 % interval "
            f"{front_row.get(f'{o.name}_low', front_row[o.name]):.4g} to "
            f"{front_row.get(f'{o.name}_high', front_row[o.name]):.4g})"
            for o in objectives
        ]
        lines.append("Objectives: " + "; ".join(parts) + f"; on the front: {front_row.get('front_status', '?')}.")
    elif record.values is not None:
        parts = [f"{o.header(record.energy_backend)} = {v:.4g}" for o, v in zip(objectives, record.values)]
        lines.append("Objectives: " + "; ".join(parts) + ".")
    if record.params is not None:
        where = f" at {record.resolution}x{record.resolution}" if record.resolution else ""
        lines.append(
            f"Params {human_count(record.params)} ({record.params:,}), MACs {human_count(record.macs)} "
            f"({record.macs:,}){where}; conv + linear layers only, BN excluded."
        )
    if record.epf:
        figures = ", ".join(
            f"B={b}: {record.epf_mj(b):.4g} mJ" if record.epf_mj(b) is not None else f"B={b}: -"
            for b in sorted(record.epf)
        )
        kind = (
            "an estimate (measured time x power model, not a meter reading)"
            if record.energy_is_estimate
            else f"measured with the '{record.energy_backend}' energy meter"
        )
        lines.append(
            f"EPF, energy of one forward + backward pass of a batch divided by the batch size B: "
            f"{figures}; {kind}, on {_fingerprint(record)}."
        )
    if record.epf_infer:
        figures = ", ".join(
            f"B={b}: {f['epf_mj']:.4g} mJ" if f.get("status", "ok") == "ok" else f"B={b}: -"
            for b, f in sorted(record.epf_infer.items())
        )
        lines.append(f"EPF-infer, energy of one forward pass (eval mode) divided by B: {figures}; same meter.")
    if record.top1 is not None:
        lines.append(
            f"Proxy accuracy (short training): top-1 {record.top1:.2f} %"
            + (f", top-5 {record.top5:.2f} %" if record.top5 is not None else "")
            + f" on {_data_summary(record.data)}."
        )
    if (full or {}).get("top1") is not None:
        lines.append(f"Full training ({full.get('epochs')} epochs, e2gcsearch validate): top-1 {full['top1']:.2f} %.")
    if break_even:
        lines.append(break_even)
    return lines


def measured_as(record: TrialRecord | None) -> tuple[str, str]:
    """How the search ran the trial's network when it measured it: (torch memory format as Python
    text, one sentence naming the implementation and mode per batch size)."""
    if record is None or not record.epf:
        return "torch.contiguous_format", "not measured (PyTorch's default NCHW layout)"
    parts = []
    for mode, measured in (("train", record.epf), ("infer", record.epf_infer)):
        for batch in sorted(measured):
            figures = measured[batch]
            choice = figures.get("impl_choice")
            how = f" (auto: {choice['reason']})" if choice else ""
            parts.append(f"{mode} mode B={batch} {figures.get('impl', 'nchw')}{how}")
    reference = record.epf[max(record.epf)].get("impl", "nchw")
    memory_format = "torch.channels_last" if layout_of(reference) == "channels_last" else "torch.contiguous_format"
    compiled = (
        " -- compiled with torch.compile; wrap the model in torch.compile to run as measured"
        if reference == "compile"
        else ""
    )
    return memory_format, "; ".join(parts) + compiled


def python_source(
    arch_config: ArchConfig,
    summary: list[str] | None = None,
    module: str = "model",
    weights: str = "model.pth",
    record: TrialRecord | None = None,
) -> str:
    """The text of a standalone builder module for ``arch_config`` (see the module docstring); with the
    trial's ``record``, the builder lays the network out as the search measured it."""
    entry = get_entry(arch_config.arch)
    if entry.export is None:
        raise ConfigError(
            f"{arch_config.arch} has no standalone builder; export it to .json (its ArchConfig) "
            "or to .pt2 / .pt / .onnx instead"
        )
    deployed = arch_config.deployed()
    plan = entry.plan(deployed)
    grouping = f"{'stage-wise ' if arch_config.is_stagewise else ''}{arch_config.module}, {arch_config.grouping}"
    if arch_config.is_learned:
        grouping += f" learned, deployed as a standard grouped conv ({deployed.module}, {deployed.grouping})"
    network = get_entry(arch_config.arch).display_name
    text = "\n\n".join(textwrap.fill(line, 100, break_on_hyphens=False) for line in (summary or []))
    imports = entry.export.imports(plan) if entry.export.imports is not None else ()
    fields = {
        "title": f"{network}, {grouping}, width {arch_config.width:g}, {arch_config.num_classes} classes.",
        "summary": _docstring_safe(text or "Exported from an ArchConfig (no measurements attached)."),
        "module": module,
        "weights": weights,
        "network": network,
        "version": __version__,
        "arch_config": repr(deployed.to_dict()),
        "num_classes": arch_config.num_classes,
        "stem_channels": plan.stem_channels,
        "table": entry.export.table(plan),
        "grouping": grouping,
        "checkpoint_keys": repr(CHECKPOINT_KEYS),
        "imports": "".join(f"import {name}\n" for name in imports),
        "needs": "torch and " + ", ".join(dict.fromkeys(name.partition(".")[0] for name in imports))
        if imports
        else "only torch",
        "keys_of": f"{network} as {imports[0].partition('.')[0]} builds it (its grouped convs regrouped)"
        if imports
        else f"e2gcsearch's own {network}",
    }
    fields["memory_format"], fields["measured_as"] = measured_as(record)
    return Template(template.HEADER + entry.export.body + template.FOOTER).substitute(fields)


def _docstring_safe(text: str) -> str:
    return text.replace("\\", "/").replace('"""', "'''")


def check_writable(path: str | Path) -> Path:
    """``path`` if its folder exists and its suffix is one we export to, else a one-line error."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        kinds = ", ".join(f"{s} ({d})" for s, d in SUFFIXES.items())
        raise ConfigError(f"cannot export to {path.name!r}: give --out a file ending in one of {kinds}")
    if not path.parent.is_dir():
        raise DataError(f"cannot write {path}: folder {path.parent} does not exist; create it or choose another --out")
    return path


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise DataError(f"cannot write {path} ({exc.strerror or exc}); choose a writable --out path") from None


def verify_python(path: Path, arch_config: ArchConfig) -> None:
    """Import the written builder and check its state-dict keys and shapes against e2gcsearch's model."""
    spec = importlib.util.spec_from_file_location(f"_e2gcsearch_export_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    try:
        with torch.device("meta"):
            exported, ours = module.build_model(), create_model(arch_config.deployed())
    except NotImplementedError:  # a constructor that computes with tensors (torchvision's RegNet)
        exported, ours = module.build_model(), create_model(arch_config.deployed())
    shapes = {k: tuple(v.shape) for k, v in exported.state_dict().items()}
    if shapes != {k: tuple(v.shape) for k, v in ours.state_dict().items()}:
        raise RuntimeError(f"internal error: the builder written to {path} does not match {arch_config.label()}")


def export_model(
    arch_config: ArchConfig,
    out: str | Path,
    record: TrialRecord | None = None,
    objectives: list | None = None,
    study: str = "",
    weights: str | Path | None = None,
    full: dict | None = None,
    front_row: dict | None = None,
    break_even: str | None = None,
) -> list[Path]:
    """Write ``arch_config`` to ``out`` in the format its suffix names; returns the files written.

    ``weights`` (a checkpoint) is checked against the network and, for ``.py``, saved next to it
    as ``<out>.pth`` (a plain state dict); for ``.pt``/``.pt2``/``.onnx`` it is baked into the model.
    """
    out = check_writable(out)
    suffix = out.suffix.lower()
    if suffix == ".json" and weights is not None:
        raise ConfigError(
            "--weights does not apply to a .json export (it holds only the ArchConfig); drop it or export to .py"
        )
    state = load_weights(weights) if weights is not None else None
    if suffix == ".json":
        _write_text(out, json.dumps(arch_config.to_dict(), indent=2, sort_keys=True) + "\n")
        return [out]
    model = _trained_model(arch_config, state, str(weights), record)
    if suffix == ".py":
        summary = describe_trial(record, objectives or [], study, full, front_row, break_even) if record else []
        weights_file = out.with_suffix(".pth")
        _write_text(out, python_source(arch_config, summary, out.stem, weights_file.name, record))
        verify_python(out, arch_config)
        if state is None:
            return [out]
        torch.save(model.state_dict(), weights_file)
        return [out, weights_file]
    resolution = record.resolution if record is not None and record.resolution else 224
    _export_compiled(model, out, resolution)
    return [out]


def _trained_model(
    arch_config: ArchConfig, state: dict[str, torch.Tensor] | None, source: str, record: TrialRecord | None
) -> nn.Module:
    """The network to export, with ``state`` loaded; FLGC deployed (from its training-form weights, or
    from the groups the trial learned when there are no weights)."""
    model = create_model(arch_config).eval()
    if state is not None:
        _load_into(model, state, source)
    elif record is not None and record.flgc_structure:
        load_structure(model, record.flgc_structure)
    return deploy(model, inplace=True)  # E2GC/FgGC: as it is


MAX_EXPORT_BATCH = 4096  # largest batch a .pt2 program accepts (its batch dimension is dynamic)


def _export_compiled(model: nn.Module, out: Path, resolution: int) -> None:
    """``.pt2``: any batch size 1..MAX_EXPORT_BATCH at ``resolution`` x ``resolution`` (the program
    checks the image size); ``.pt``/``.onnx``: traced at batch 1."""
    example = (torch.randn(1, 3, resolution, resolution),)
    suffix = out.suffix.lower()
    if suffix == ".pt":
        with warnings.catch_warnings():  # TorchScript is deprecated upstream in favour of torch.export
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.trace(model, example), str(out))
    elif suffix == ".pt2":
        # Traced at batch 2: torch.export specialises a dimension seen as 1 (or 0) to that constant.
        batch = torch.export.Dim("batch", min=1, max=MAX_EXPORT_BATCH)
        program = torch.export.export(model, (torch.randn(2, 3, resolution, resolution),), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(out))
    else:
        if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxscript") is None:
            raise ConfigError(
                "ONNX export needs the optional packages onnx and onnxscript: "
                "pip install onnx onnxscript (or export to .pt2 / .pt, which need only torch)"
            )
        torch.onnx.export(model, example, str(out), input_names=["images"], output_names=["logits"], dynamo=True)


def export_trial(study: optuna.Study, number: int, out: str | Path, weights: str | Path | None = None) -> list[Path]:
    """Export trial ``number`` of ``study`` (must be COMPLETE) to ``out``; returns the files written."""
    check_writable(out)
    record = trial_record(study, require_architecture(study, get_trial(study, number)))
    front = with_break_even(study, front_info(study, include_dominated=True))
    rows = front.frame[front.frame["trial"] == number].to_dict(orient="records")
    sentence = None
    if rows and front.break_even is not None:
        sentence = front.break_even.sentence(rows[0]["break_even_frames"], rows[0]["break_even_reference"])
    return export_model(
        record.arch_config,
        out,
        record,
        study_objectives(study),
        study.study_name,
        weights,
        full_result(study, number),
        rows[0] if rows else None,
        sentence,
    )


__all__ = ["describe_trial", "export_model", "export_trial", "load_weights", "python_source"]
