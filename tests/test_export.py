"""Export: the standalone builder rebuilds e2gcsearch's networks exactly (imported with e2gcsearch
out of reach), JSON round trips, compiled formats, and the `export` command's errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState, create_trial

from e2gcsearch import ArchConfig, create_model
from e2gcsearch.cli import main
from e2gcsearch.errors import ConfigError, DataError, UnknownNameError
from e2gcsearch.export import export_model, export_trial, load_weights
from e2gcsearch.store.record import user_attrs
from e2gcsearch.store.storage import open_study

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

CONFIGS = {
    "mobilenet": ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=10),
    "resnext": ArchConfig("resnext50", groups=8, width=0.25, num_classes=7),
    "stagewise": ArchConfig("mobilenet_v1", stage_group_sizes=(1, 2, 4, 4, 8, 8), width=0.25, num_classes=5),
}
RESOLUTION = 32

# Runs in a fresh interpreter that sees torch's site-packages but never e2gcsearch.
ISOLATED = textwrap.dedent("""
    import importlib.abc, importlib.util, sys
    sys.path[:0] = [{site!r}]

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "e2gcsearch":
                raise ImportError("e2gcsearch must not be needed by an exported model")

    sys.meta_path.insert(0, Block())
    import torch
    results = {{}}
    for name, folder in {jobs!r}.items():
        spec = importlib.util.spec_from_file_location("exported_" + name, folder + "/model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        net = module.build_model(weights=folder + "/weights.pt").eval()
        with torch.no_grad():
            out = net(torch.load(folder + "/input.pt"))
        results[name] = {{"params": sum(p.numel() for p in net.parameters()), "keys": list(net.state_dict()),
                         "out": out}}
    torch.save(results, {result!r})
""")


def _randomised(config: ArchConfig) -> torch.nn.Module:
    """e2gcsearch's model with every parameter and BN statistic random, so that outputs are telling."""
    torch.manual_seed(0)
    model = create_model(config)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name else torch.randn_like(tensor) * 0.1)
    return model.eval()


def test_exported_builders_match_e2gcsearch_without_importing_it(tmp_path):
    jobs, expected = {}, {}
    for name, config in CONFIGS.items():
        folder = tmp_path / name
        folder.mkdir()
        assert export_model(config, folder / "model.py") == [folder / "model.py"]
        model = _randomised(config)
        torch.save(model.state_dict(), folder / "weights.pt")
        x = torch.randn(2, 3, RESOLUTION, RESOLUTION)
        torch.save(x, folder / "input.pt")
        with torch.no_grad():
            expected[name] = (sum(p.numel() for p in model.parameters()), list(model.state_dict()), model(x))
        jobs[name] = str(folder)
        source = (folder / "model.py").read_text()
        assert "e2gcsearch" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
    site = str(Path(torch.__file__).resolve().parents[1])
    script = tmp_path / "check.py"
    script.write_text(ISOLATED.format(site=site, jobs=jobs, result=str(tmp_path / "result.pt")))
    run = subprocess.run(
        [sys.executable, "-I", "-S", str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = torch.load(tmp_path / "result.pt")
    for name, (params, keys, out) in expected.items():
        assert results[name]["params"] == params, name
        assert results[name]["keys"] == keys, name
        torch.testing.assert_close(results[name]["out"], out, rtol=1e-5, atol=1e-5)


def test_resnext_builder_has_torchvision_names(tmp_path):
    text = export_model(CONFIGS["resnext"], tmp_path / "rx.py")[0].read_text()
    assert "layer4.2" in text and "self.downsample = nn.Sequential(" in text and "self.fc = nn.Linear" in text


def test_json_round_trip(tmp_path):
    for name, config in CONFIGS.items():
        path = export_model(config, tmp_path / f"{name}.json")[0]
        loaded = ArchConfig.from_json(path.read_text())
        assert loaded == config
        assert sum(p.numel() for p in create_model(loaded).parameters()) == sum(
            p.numel() for p in create_model(config).parameters()
        )


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(directions=["minimize", "maximize"], storage=url, study_name="e2gcsearch")
    study.set_user_attr(
        "objectives",
        [
            {"name": "epf@16", "metric": "epf", "batch_size": 16, "direction": "minimize", "unit": "mJ/frame"},
            {"name": "top1", "metric": "top1", "batch_size": None, "direction": "maximize", "unit": "%"},
        ],
    )
    config = CONFIGS["mobilenet"]
    attrs = user_attrs(
        arch_config=config,
        params=123456,
        macs=7654321,
        resolution=RESOLUTION,
        epf={1: {"epf_mj": 3.5, "status": "ok"}, 16: {"epf_mj": 1.25, "status": "ok"}},
        energy_backend="rapl",
        energy_is_estimate=False,
        fingerprint={"device_model": "Test CPU 9000"},
        top1=61.5,
        top5=90.0,
        data={"dataset": "digits", "resolution": RESOLUTION},
    )
    study.add_trial(create_trial(values=[1.25, 61.5], user_attrs=attrs))
    study.add_trial(
        create_trial(state=TrialState.FAIL, user_attrs=user_attrs(arch_config=config, fail_reason="RuntimeError: boom"))
    )
    return open_study(url, "e2gcsearch")


def test_exported_docstring_tells_the_trial_story(study, tmp_path):
    text = export_trial(study, 0, tmp_path / "model.py")[0].read_text()
    for fact in (
        "Trial 0 of study 'e2gcsearch'",
        "EPF@16 (mJ/frame, rapl) = 1.25",
        "top-1 (%, proxy) = 61.5",
        "123,456",
        "7,654,321",
        "at 32x32",
        "B=1: 3.5 mJ",
        "'rapl' energy meter",
        "Test CPU 9000",
        "top-1 61.50 %",
        "E2GC, G=4, width 0.25",
    ):
        assert fact in text.replace("\n", " "), fact


def test_weights_are_checked_and_shipped_next_to_the_builder(study, tmp_path):
    model = _randomised(CONFIGS["mobilenet"])
    checkpoint = tmp_path / "trial-0"
    checkpoint.mkdir()
    torch.save({"format": 1, "epoch": 3, "model": model.state_dict()}, checkpoint / "last.pt")
    written = export_trial(study, 0, tmp_path / "model.py", weights=checkpoint)
    assert written == [tmp_path / "model.py", tmp_path / "model.pth"]
    assert set(load_weights(tmp_path / "model.pth")) == set(model.state_dict())
    wrong = tmp_path / "wrong.pt"
    torch.save(create_model(CONFIGS["resnext"]).state_dict(), wrong)
    with pytest.raises(ConfigError, match="do not fit this trial's network"):
        export_trial(study, 0, tmp_path / "again.py", weights=wrong)
    with pytest.raises(DataError, match="no weights at"):
        export_trial(study, 0, tmp_path / "again.py", weights=tmp_path / "missing.pt")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TorchScript is deprecated upstream; still offered
def test_compiled_exports_reproduce_the_model(study, tmp_path):
    x = torch.randn(1, 3, RESOLUTION, RESOLUTION)
    model = _randomised(CONFIGS["mobilenet"])
    torch.save(model.state_dict(), tmp_path / "w.pt")
    with torch.no_grad():
        expected = model(x)
    export_trial(study, 0, tmp_path / "model.pt2", weights=tmp_path / "w.pt")
    program = torch.export.load(str(tmp_path / "model.pt2")).module()
    with torch.no_grad():
        torch.testing.assert_close(program(x), expected)
        five = torch.randn(5, 3, RESOLUTION, RESOLUTION)  # the batch dimension is dynamic
        torch.testing.assert_close(program(five), model(five))
    export_trial(study, 0, tmp_path / "traced.pt", weights=tmp_path / "w.pt")
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "traced.pt"))(x), expected)


def test_onnx_export_needs_its_packages_or_says_so(study, tmp_path):
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install onnx onnxscript"):
            export_trial(study, 0, tmp_path / "model.onnx")
        return
    assert export_trial(study, 0, tmp_path / "model.onnx")[0].stat().st_size > 0


def test_export_errors(study, tmp_path):
    with pytest.raises(UnknownNameError, match="no trial 5; its trials are numbered 0-1"):
        export_trial(study, 5, tmp_path / "m.py")
    with pytest.raises(ConfigError, match=r"trial 1 .* is FAIL \(RuntimeError: boom\), not COMPLETE"):
        export_trial(study, 1, tmp_path / "m.py")
    with pytest.raises(ConfigError, match=r"\.py .*\.json"):
        export_trial(study, 0, tmp_path / "m.txt")
    with pytest.raises(ConfigError, match="does not apply to a .json"):
        export_trial(study, 0, tmp_path / "m.json", weights=tmp_path / "m.pth")


def test_export_command(study, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["export", "--storage", url, "--trial", "0", "--out", str(tmp_path / "cli.py")]) == 0
    assert "wrote" in capsys.readouterr().err and (tmp_path / "cli.py").exists()
    assert main(["export", "--storage", url, "--trial", "0", "--out", str(tmp_path / "cli.json")]) == 0
    assert json.loads((tmp_path / "cli.json").read_text())["group_size"] == 4
    capsys.readouterr()
    for argv, message in (
        (["--trial", "9", "--out", str(tmp_path / "x.py")], "no trial 9"),
        (["--trial", "1", "--out", str(tmp_path / "x.py")], "not COMPLETE"),
        (["--trial", "0", "--out", str(tmp_path / "no" / "x.py")], "does not exist"),
        (["--trial", "0", "--out", str(tmp_path / "x.py"), "--study", "other"], "existing studies"),
    ):
        assert main(["export", "--storage", url, *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_a_trial_of_a_study_not_made_by_e2gcsearch_is_one_line(tmp_path, capsys):
    import optuna

    from e2gcsearch.cli import main

    url = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="foreign", storage=url)
    study.add_trial(optuna.trial.create_trial(value=1.0))
    assert (
        main(["export", "--storage", url, "--study", "foreign", "--trial", "0", "--out", str(tmp_path / "m.py")]) == 2
    )
    assert "records no architecture" in capsys.readouterr().err and not (tmp_path / "m.py").exists()
