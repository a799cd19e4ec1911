"""dcnn_helpers.models: networks by name and the speed-run network's whitening layer."""

import pytest
import torch

from dcnn_helpers import models


def test_model_names():
    assert isinstance(models.build_model("fast-w2"), models.FastNet)
    assert models.build_model("fast", num_classes=100).body[-1].out_features == 100
    wide = sum(p.numel() for p in models.build_model("resnet-8-w2").parameters())
    assert wide > sum(p.numel() for p in models.build_model("resnet-8").parameters())


@pytest.mark.parametrize("name, error, message", [
    ("vgg-16", ValueError, "not a known model"),
    ("resnet-7", ValueError, "6n \\+ 2"),
    ("dmrnet-0", ValueError, "6n \\+ 2"),
    ("fast-w0", ValueError, "widen factor"),
    (16, TypeError, "must be a string"),
])
def test_bad_names(name, error, message):
    with pytest.raises(error, match=message):
        models.build_model(name)


def test_fastnet_whitening_decorrelates_patches():
    torch.manual_seed(0)
    images = torch.randn(64, 3, 32, 32) @ torch.randn(32, 32) * 0.2  # correlated pixels
    net = models.FastNet()
    trainable = [name for name, p in net.named_parameters() if p.requires_grad]
    net.init_from_data(images, eps=1e-9)
    # the optimiser of a resumed run (which skips init_from_data) must see the same parameters
    assert [name for name, p in net.named_parameters() if p.requires_grad] == trainable
    features = net.whiten(images)[:, :12] - net.whiten.bias[:12].view(1, 12, 1, 1)
    covariance = torch.cov(features.permute(0, 2, 3, 1).reshape(-1, 12).double().T)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=1e-3)
    assert not net.whiten.weight.requires_grad and torch.equal(net.whiten.bias, torch.zeros(24))


def test_fastnet_shapes_and_size():
    net = models.FastNet()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 1_972_504
