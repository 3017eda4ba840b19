"""Training-free scores on networks whose answer is known by hand, and on a real tiny network."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional

from e2gcsearch import ArchConfig
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.train.scores import SCORES, grad_norm, naswot, score_network, snip, synflow


def two_layer_linear() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))


def test_synflow_conserves_the_flow_through_every_layer():
    # With |W| and a ones input the network is linear and positive: R = 1' |W2| |W1| 1, and each layer
    # passes all of R (sum |w dR/dw| over one layer = R), so the score is (number of layers) x R.
    model = two_layer_linear()
    w1, w2 = (layer.weight.detach().abs().double() for layer in (model[0], model[2]))
    flow = float(torch.ones(1, 2, dtype=torch.float64) @ w2 @ w1 @ torch.ones(4, 1, dtype=torch.float64))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    assert synflow(model, torch.zeros(5, 4), torch.zeros(5, dtype=torch.long)) == pytest.approx(2 * flow)
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)  # signs and dtype restored
    assert after["0.weight"].dtype == torch.float32 and model.training  # and left in training mode


def test_naswot_is_the_log_determinant_of_the_hamming_kernel():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
    images = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])  # codes 10, 01, 11
    # K[i, j] = 2 - Hamming distance: [[2, 0, 1], [0, 2, 1], [1, 1, 2]], det = 4
    assert naswot(model, images, torch.zeros(3, dtype=torch.long)) == pytest.approx(math.log(4.0))
    same = torch.tensor([[1.0, -1.0], [2.0, -3.0]])  # identical codes: a singular kernel
    assert naswot(model, same, torch.zeros(2, dtype=torch.long)) == -math.inf


def linear_case():
    torch.manual_seed(1)
    layer = nn.Linear(3, 4, bias=False)
    images, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 3, 0, 1])
    # d CE / d W for a linear layer, by hand: (softmax - one-hot)' x / batch
    probabilities = functional.softmax(images @ layer.weight.detach().T, dim=1)
    gradient = (probabilities - functional.one_hot(labels, 4).float()).T @ images / len(labels)
    return layer, images, labels, gradient


def test_grad_norm_is_the_norm_of_the_loss_gradient():
    layer, images, labels, gradient = linear_case()
    assert grad_norm(layer, images, labels) == pytest.approx(float(gradient.norm()), rel=1e-5)


def test_snip_is_the_summed_saliency_of_the_weights():
    layer, images, labels, gradient = linear_case()
    expected = float((layer.weight.detach() * gradient).abs().sum())
    assert snip(layer, images, labels) == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def digits():
    return load_data(
        DataConfig(name="digits", classes=3, train_per_class=8, val_per_class=2, resolution=32), progress=False
    )


@pytest.mark.parametrize("name", list(SCORES))
def test_every_score_ranks_real_networks_reproducibly(name, digits):
    narrow = ArchConfig("mobilenet_v1", group_size=1, width=0.25, num_classes=3)
    wide = ArchConfig("mobilenet_v1", groups=2, width=0.5, num_classes=3)
    first = score_network(name, narrow, digits, seed=0, batch=8)
    assert math.isfinite(first) and first == score_network(name, narrow, digits, seed=0, batch=8)
    assert math.isfinite(score_network(name, wide, digits, seed=0, batch=8))
    learned = ArchConfig("mobilenet_v1", groups=2, width=0.25, num_classes=3, module="FLGC")
    assert math.isfinite(score_network(name, learned, digits, seed=1, batch=8))


def test_an_unknown_score_is_named():
    with pytest.raises(ValueError, match="unknown score 'zen'; choose one of synflow"):
        score_network("zen", ArchConfig("mobilenet_v1", group_size=1, width=0.25, num_classes=3), None)
