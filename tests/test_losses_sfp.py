"""The self-feature-preserving loss: timm backbone, layer selection, weights from a file, missing-weights message."""

from __future__ import annotations

import logging

import pytest
import torch

from zoo.errors import ParameterError, TrainingError
from zoo.registry import create


@pytest.fixture(scope="module")
def sfp():
    torch.manual_seed(0)
    return create("loss", {"name": "self_feature_preserving", "pretrained": False})


def test_default_is_vgg16_relu5_1_at_one_eighth(sfp):
    convs = [m for m in sfp.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 11  # conv1_1 .. conv5_1
    assert isinstance(sfp.backbone[-1], torch.nn.ReLU)
    f = sfp.features(torch.rand(1, 3, 64, 48))
    assert f.shape == (1, 512, 8, 6)  # the 4th max-pool is skipped: 1/8 resolution
    # instance-normalised features
    assert torch.allclose(f.mean((2, 3)), torch.zeros(1, 512), atol=1e-4)


def test_values_gradients_and_frozen_backbone(sfp):
    src = torch.rand(2, 3, 32, 32)
    out = torch.rand(2, 3, 32, 32, requires_grad=True)
    assert torch.equal(sfp.per_image(src, src), torch.zeros(2))
    per = sfp.per_image(src, out)
    assert per.shape == (2,) and (per > 0).all()
    sfp(src, out).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in sfp.backbone.parameters())
    sfp.train()
    assert not sfp.backbone.training


def test_preprocessing_options_differ():
    torch.manual_seed(0)
    a = create(
        "loss",
        {
            "name": "self_feature_preserving",
            "pretrained": False,
            "backbone": "resnet18",
            "layer": "layer1",
            "skip": [],
            "preprocess": "caffe",
        },
    )
    x = torch.rand(1, 3, 32, 32)
    caffe = a._prepare(x)
    assert torch.allclose(caffe[:, 0], x[:, 2] * 255) and torch.allclose(caffe[:, 2], x[:, 0] * 255)  # BGR 0-255
    a.preprocess = "imagenet"
    assert torch.allclose(a._prepare(x)[:, 0], (x[:, 0] - 0.485) / 0.229)


def test_any_timm_backbone_and_weights_from_a_local_file(tmp_path):
    from zoo._compat import import_timm

    timm = import_timm()
    torch.manual_seed(1)
    ref = timm.create_model("resnet18", pretrained=False, num_classes=0)
    file = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), file)
    loss = create(
        "loss",
        {
            "name": "self_feature_preserving",
            "pretrained": True,
            "backbone": "resnet18",
            "layer": "layer1",
            "skip": [],
            "weights": str(file),
        },
    )
    assert loss.missing_weights is None
    assert torch.equal(loss.backbone.model.conv1.weight, ref.conv1.weight)
    x = torch.rand(1, 3, 32, 32)
    ref.eval()
    expected = ref.layer1(ref.maxpool(ref.act1(ref.bn1(ref.conv1((x - loss._mean) / loss._std)))))
    assert torch.allclose(loss.features(x), torch.nn.functional.instance_norm(expected), atol=1e-5)


def test_missing_weights_say_how_to_provide_them(monkeypatch, caplog):
    import zoo.losses.content as content

    monkeypatch.setattr(content, "_hf_cached_weights", lambda hub_id: None)  # no cache, never the network
    with caplog.at_level(logging.WARNING, logger="zoo.losses"):
        loss = create(
            "loss",
            {
                "name": "self_feature_preserving",
                "pretrained": True,
                "backbone": "resnet18",
                "layer": "layer1",
                "skip": [],
            },
        )
    with pytest.raises(TrainingError) as err:
        loss.check_ready()
    msg = str(err.value)
    assert "timm/resnet18" in msg and "weights:" in msg and "pretrained: false" in msg and "never downloads" in msg
    with pytest.raises(TrainingError):
        loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_random_backbone_is_logged_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="zoo.losses"):
        create(
            "loss",
            {
                "name": "self_feature_preserving",
                "pretrained": False,
                "backbone": "resnet18",
                "layer": "layer1",
                "skip": [],
            },
        )
    assert "RANDOM weights" in caplog.text


def test_bad_parameters():
    with pytest.raises(ParameterError, match="no module 'layer9'"):
        create(
            "loss",
            {
                "name": "self_feature_preserving",
                "pretrained": False,
                "backbone": "resnet18",
                "layer": "layer9",
                "skip": [],
            },
        )
    with pytest.raises(ParameterError, match="timm has no model"):
        create("loss", {"name": "self_feature_preserving", "pretrained": False, "backbone": "vgg1600"})
    with pytest.raises(ParameterError, match="does not exist"):
        create("loss", {"name": "self_feature_preserving", "pretrained": True, "weights": "/nonexistent/w.pth"})
