"""FLGC: learned groups that train as a masked dense conv and deploy as a plain grouped conv.

Oracles: the deployed network must compute what the training form computes (to 1e-5), have the state
dict of the standard grouped network e2gcsearch builds for FgGC/E2GC, and cost exactly what that network
costs; the exported builder must load the deployed weights and reproduce the outputs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import optuna
import pytest
import torch
from torch import nn

from e2gcsearch import ArchConfig, ConfigError, create_model
from e2gcsearch.cli import main
from e2gcsearch.cost import learned_cost, model_cost, network_cost
from e2gcsearch.export import export_model
from e2gcsearch.models import deploy, learned_structure, load_structure
from e2gcsearch.models.flgc import LearnedGroupConv2d, SplitGroupConv2d, balanced_groups, sinkhorn
from e2gcsearch.profiling.settings import ProfileConfig, build_model
from e2gcsearch.search.space import SearchSpace
from e2gcsearch.store import record

NETWORKS = [("mobilenet_v1", {"groups": 4}), ("resnext50", {"groups": 8}), ("mobilenet_v1", {"group_size": 8})]


def trained_like(arch_config: ArchConfig, seed: int = 0) -> nn.Module:
    """The FLGC network with the state training leaves: logits far from their start, BN statistics of
    real batches, a classifier whose outputs are O(1) (so 1e-5 is a meaningful tolerance)."""
    torch.manual_seed(seed)
    model = create_model(arch_config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("_logits"):
                parameter.normal_(0.0, 1.0)
            elif parameter.dim() == 1:  # BN affine parameters, classifier bias
                parameter.uniform_(0.5, 1.5)
        classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        classifier.weight.normal_(0.0, classifier.in_features**-0.5)
        model.train()(torch.randn(8, 3, 32, 32))  # BN running statistics
    return model.eval()


@pytest.mark.parametrize("channels,groups", [(64, 8), (24, 3), (16, 16), (32, 1)])
def test_balanced_assignment_is_a_permutation_with_equal_groups(channels, groups):
    torch.manual_seed(channels + groups)
    skewed = torch.randn(channels, groups)
    skewed[:, 0] += 5.0  # every channel would rather be in group 0
    for scores in (torch.randn(channels, groups), skewed, sinkhorn(skewed)):
        group_of = balanced_groups(scores)
        assert torch.bincount(group_of, minlength=groups).tolist() == [channels // groups] * groups
        order = torch.argsort(group_of, stable=True)
        assert sorted(order.tolist()) == list(range(channels))  # the deployed permutation


def test_balanced_assignment_keeps_a_balanced_preference():
    wanted = torch.arange(24) % 4
    scores = torch.nn.functional.one_hot(wanted, 4).float() + 0.01 * torch.randn(24, 4)
    assert torch.equal(balanced_groups(sinkhorn(scores)), wanted)


def test_the_forward_masks_to_the_hard_groups_and_the_gradient_reaches_the_logits():
    torch.manual_seed(0)
    layer = LearnedGroupConv2d(16, 16, 3, groups=4)
    x = torch.randn(2, 16, 8, 8)
    layer(x).square().sum().backward()
    assert layer.in_logits.grad.abs().sum() > 0 and layer.out_logits.grad.abs().sum() > 0
    ins, outs = layer.group_indices()
    mask = (outs[:, None] == ins[None, :]).float()[:, :, None, None]
    expected = nn.functional.conv2d(x, layer.weight * mask, padding=1)
    assert torch.equal(layer(x), expected)  # exactly: the straight-through term adds 0 in the forward


@pytest.mark.parametrize("arch,grouping", NETWORKS)
def test_deploy_is_the_standard_grouped_network_and_computes_the_same(arch, grouping):
    arch_config = ArchConfig(arch, module="FLGC", width=0.25, num_classes=10, **grouping)
    model = trained_like(arch_config)
    deployed = deploy(model)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected, got = model(x), deployed(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert not any(isinstance(m, LearnedGroupConv2d) for m in deployed.modules())
    assert any(isinstance(m, LearnedGroupConv2d) for m in model.modules())  # deploy copies by default
    standard = create_model(arch_config.deployed())
    assert {k: v.shape for k, v in deployed.state_dict().items()} == {
        k: v.shape for k, v in standard.state_dict().items()
    }
    standard.load_state_dict(deployed.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(standard.eval()(x), expected, rtol=0, atol=1e-5)


def test_uneven_groups_deploy_as_one_conv_per_group():
    arch_config = ArchConfig("mobilenet_v1", module="FLGC", groups=4, uneven=True, width=0.25, num_classes=10)
    model = trained_like(arch_config, seed=3)
    structure = learned_structure(model)
    sizes = [torch.bincount(torch.tensor(layer["in"]), minlength=4).tolist() for layer in structure.values()]
    assert any(len(set(s)) > 1 for s in sizes)  # free assignment: groups of different sizes
    deployed = deploy(model)
    split = [m for m in deployed.modules() if isinstance(m, SplitGroupConv2d)]
    assert [s.in_sizes for s in split] == sizes
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x), rtol=0, atol=1e-5)
    cost = learned_cost(arch_config, structure, 32)
    per_group = sum(conv.in_channels * conv.out_channels * 9 for s in split for conv in s.convs)
    assert cost.macs == model_cost(deploy(model), arch_config, 32).macs
    assert per_group > 0 and cost.macs != network_cost(arch_config.replace(module=None), 32).macs


@pytest.mark.parametrize("arch,grouping", NETWORKS)
def test_cost_of_deployed_flgc_equals_the_fixed_group_network(arch, grouping):
    flgc = ArchConfig(arch, module="FLGC", width=0.5, num_classes=10, **grouping)
    fixed = ArchConfig(arch, width=0.5, num_classes=10, **grouping)
    ours, theirs = network_cost(flgc, 64), network_cost(fixed, 64)
    assert (ours.params, ours.macs, ours.activations) == (theirs.params, theirs.macs, theirs.activations)


def test_a_trained_model_deployed_costs_what_the_fixed_group_network_costs():
    flgc = ArchConfig("mobilenet_v1", module="FLGC", groups=4, width=0.25, num_classes=10)
    model = trained_like(flgc)
    counted = model_cost(deploy(model), flgc, 32)
    assert counted.macs == network_cost(flgc.replace(module=None), 32).macs
    assert model_cost(model, flgc, 32).macs > counted.macs  # the masked dense training form is not what runs


def test_the_profiler_measures_the_deployed_network():
    flgc = ArchConfig("mobilenet_v1", module="FLGC", groups=8, width=0.25, num_classes=10)
    model = build_model(flgc, "cpu", ProfileConfig(resolution=32))
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(grouped) == 13 and all(m.groups == 8 for m in grouped)
    assert not any(isinstance(m, LearnedGroupConv2d) for m in model.modules())
    with pytest.raises(ConfigError, match="learns in training"):
        build_model(flgc.replace(uneven=True), "cpu", ProfileConfig(resolution=32))


def test_a_stored_structure_is_restored_exactly():
    arch_config = ArchConfig("resnext50", module="FLGC", groups=8, width=0.25, num_classes=10)
    structure = learned_structure(trained_like(arch_config))
    fresh = create_model(arch_config)
    load_structure(fresh, json.loads(json.dumps(structure)))
    assert learned_structure(fresh) == structure
    with pytest.raises(ConfigError, match="another network"):
        load_structure(create_model(arch_config.replace(groups=4)), structure)


def test_exported_builder_loads_the_deployed_weights(tmp_path):
    arch_config = ArchConfig("mobilenet_v1", module="FLGC", groups=4, width=0.25, num_classes=10)
    model = trained_like(arch_config)
    torch.save({"model": model.state_dict()}, tmp_path / "last.pt")  # a training checkpoint
    files = export_model(arch_config, tmp_path / "net.py", weights=tmp_path / "last.pt")
    assert [f.name for f in files] == ["net.py", "net.pth"]
    spec = importlib.util.spec_from_file_location("exported_flgc", files[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = module.build_model(weights=str(files[1])).eval()
    assert all(
        m.groups == 4
        for m in exported.modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.in_channels == m.out_channels
    )
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x), rtol=0, atol=1e-5)
    assert "FLGC, g=4 learned" in files[0].read_text()


def test_config_names_and_round_trip():
    flgc = ArchConfig("mobilenet_v1", module="FLGC", groups=8, width=0.5)
    assert flgc.label() == "mobilenet_v1 FLGC g=8 w=0.50" and flgc.module == "FLGC"
    assert ArchConfig.from_json(flgc.to_json()) == flgc
    assert flgc.replace(groups=4).module == "FLGC" and flgc.deployed() == ArchConfig(
        "mobilenet_v1", groups=8, width=0.5
    )
    assert ArchConfig("mobilenet_v1", group_size=4).replace(groups=8).module == "FgGC"
    assert "module" not in ArchConfig("mobilenet_v1", groups=8).to_dict()  # E2GC/FgGC cache keys unchanged
    assert (
        ArchConfig("resnext50", module="FLGC", group_size=4, uneven=True).label() == "resnext50 FLGC-uneven G=4 w=1.00"
    )
    for bad in (
        dict(groups=8, uneven=True),
        dict(groups=8, module="E2GC"),
        dict(stage_group_sizes=(1,) * 6, module="FLGC"),
        dict(groups=8, module="flgc"),
    ):
        with pytest.raises(ConfigError):
            ArchConfig("mobilenet_v1", **bad)


def test_search_space_offers_flgc_at_the_fgGC_values():
    space = SearchSpace(modules=("FgGC", "FLGC"), groups=(4, 8), widths=(0.25,))
    assert space.groupings == ("g=4", "g=8", "FLGC g=4", "FLGC g=8")
    for point in space.points(10):
        assert space.to_config(space.params_of(point), 10) == point
    assert {p.module for p in space.points(10)} == {"FgGC", "FLGC"}


@pytest.mark.slow
def test_search_front_and_export_of_flgc_trials(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/study.db"
    common = ["--storage", storage, "--study", "flgc"]
    assert (
        main(
            [
                "run",
                "--modules",
                "FLGC",
                "--groups",
                "2,4",
                "--widths",
                "0.25",
                "--trials",
                "2",
                "--no-baselines",
                "--data",
                "digits",
                "--train-per-class",
                "12",
                "--val-per-class",
                "6",
                "--resolution",
                "32",
                "--epochs",
                "1",
                "--batch-sizes",
                "2",
                "--objective",
                "epf@2,top1",
                "--repeats",
                "2",
                "--min-window-s",
                "0.02",
                *common,
            ]
        )
        == 0
    )
    capsys.readouterr()  # the run's own front table
    assert main(["front", "--format", "json", *common]) == 0
    front = json.loads(capsys.readouterr().out)
    rows = front["rows"] if isinstance(front, dict) else front
    assert rows and all(row["module"] == "FLGC" for row in rows)
    number = int(rows[0]["trial"])
    study = optuna.load_study(study_name="flgc", storage=storage)
    stored = study.trials[number].user_attrs[record.FLGC_STRUCTURE]
    groups = study.trials[number].user_attrs[record.ARCH_CONFIG]["groups"]
    assert len(stored) == 13 and all(  # balanced: every group holds exactly C / g channels and filters
        sorted(torch.bincount(torch.tensor(layer[side])).tolist()) == [len(layer[side]) // groups] * groups
        for layer in stored.values()
        for side in ("in", "out")
    )
    out = tmp_path / "best.py"
    assert main(["export", "--trial", str(number), "--out", str(out), *common]) == 0
    text = out.read_text()
    assert "learned, deployed as a standard grouped conv" in text
    spec = importlib.util.spec_from_file_location("exported_trial", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build_model().eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_training_learns_a_structure_and_can_start_from_one():
    from e2gcsearch.data import DataConfig, load_data
    from e2gcsearch.train import TrainConfig, train_model

    data = load_data(DataConfig(name="digits", train_per_class=4, val_per_class=2, resolution=32))
    arch_config = ArchConfig("mobilenet_v1", module="FLGC", groups=4, width=0.25, num_classes=data.num_classes)
    config = TrainConfig(epochs=1, batch_size=20, progress=False, threads=1, device="cpu")
    first = train_model(arch_config, data, config)
    assert first.ok and set(first.structure) == {f"features.{i}.conv_grouped" for i in range(13)}
    start = trained_like(arch_config)  # a structure unlike a fresh network's
    wanted = learned_structure(start)
    resumed = train_model(arch_config, data, dataclasses.replace(config, lr=1e-9), structure=wanted)
    assert resumed.structure == wanted  # steps of lr 1e-9 cannot move it: training began from the stored groups
    assert train_model(arch_config.replace(module=None), data, config).structure is None
