"""EnlightenGAN's no-norm PatchGAN and the local-patch wrapper."""

from __future__ import annotations

import pytest
import torch

from zoo.discriminators.local import crop_windows
from zoo.discriminators.patchgan import patch_map_size
from zoo.errors import InputError
from zoo.registry import create


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_global_and_local_sizes():
    g = create("discriminator", {"name": "patchgan_nonorm", "n_layers": 5})
    loc = create("discriminator", {"name": "patchgan_nonorm", "n_layers": 4})
    assert n_params(g) == 11_154_369
    assert n_params(loc) == 6_959_553
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in g.modules())
    assert not isinstance(list(g.model)[-1], torch.nn.Sigmoid)
    assert patch_map_size(320, 5) == 13 and patch_map_size(32, 4) == 5
    with torch.no_grad():
        assert loc(torch.rand(2, 3, 32, 32)).shape == (2, 1, 5, 5)
        small = create("discriminator", {"name": "patchgan_nonorm", "n_layers": 2, "ndf": 8})
        assert small(torch.rand(1, 3, 40, 24)).shape == (1, 1, patch_map_size(40, 2), patch_map_size(24, 2))


def test_patchgan_bad_input():
    d = create("discriminator", {"name": "patchgan_nonorm", "n_layers": 2, "ndf": 4})
    with pytest.raises(InputError, match="N x 3 x H x W"):
        d(torch.rand(1, 1, 32, 32))
    with pytest.raises(InputError, match=">= 1"):
        create("discriminator", {"name": "patchgan_nonorm", "n_layers": 0})
    # padding 2 keeps a non-empty map at any size
    deep = create("discriminator", {"name": "patchgan_nonorm", "n_layers": 6, "ndf": 2})
    assert deep(torch.rand(1, 3, 8, 8)).numel() >= 1


def local(**kw):
    block = {
        "name": "local_patches",
        "discriminator": {"name": "patchgan_nonorm", "n_layers": 2, "ndf": 4},
        "n_patches": 3,
        "patch_size": 16,
        **kw,
    }
    return create("discriminator", block)


def test_local_patches_shapes_and_shared_windows():
    torch.manual_seed(0)
    d = local()
    x = torch.rand(2, 3, 40, 50)
    w = d.sample_windows(2, 40, 50)
    assert w.shape == (3, 2, 2)
    assert torch.equal(w[:, 0], w[:, 1])  # official: one offset per batch
    assert (w[..., 0] <= 40 - 16).all() and (w[..., 1] <= 50 - 16).all() and (w >= 0).all()
    with torch.no_grad():
        s = d(x, windows=w)
        h = patch_map_size(16, 2)
        assert s.shape == (2, 1, 3 * h, h)
        # the same windows give the same scores; the score of patch k of image i is the inner D on that crop
        assert torch.equal(s, d(x, windows=w))
        top, left = w[1, 1].tolist()
        inner = d.inner(x[1:2, :, top : top + 16, left : left + 16])
        assert torch.allclose(s[1:2, :, h : 2 * h], inner, atol=1e-6)


def test_local_patches_per_image_windows_and_crop():
    torch.manual_seed(3)
    d = local(per_image=True, n_patches=4)
    w = d.sample_windows(5, 64, 64)
    assert not all(torch.equal(w[:, 0], w[:, i]) for i in range(1, 5))
    x = torch.rand(5, 3, 64, 64)
    crops = d.crop(x, w)
    assert crops.shape == (20, 3, 16, 16)
    for p in range(4):
        for i in range(5):
            top, left = w[p, i].tolist()
            assert torch.equal(crops[p * 5 + i], x[i, :, top : top + 16, left : left + 16])


def test_local_patches_errors():
    d = local()
    with pytest.raises(InputError, match="smaller than patch_size"):
        d(torch.rand(1, 3, 8, 40))
    with pytest.raises(InputError, match="P x N x 2"):
        crop_windows(torch.rand(2, 3, 32, 32), torch.zeros(3, 1, 2, dtype=torch.long), 16)
    with pytest.raises(InputError, match=">= 1"):
        local(n_patches=0)
