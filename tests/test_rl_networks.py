"""The Kosugi actor-critic and critic: architecture, the Chainer npz loader, parity with the released model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from zoo.errors import DataError, InputError, ParameterError
from zoo.registry import create
from zoo.rl.networks import KosugiActorCritic, chainer_key_map, load_chainer_npz

pytestmark = pytest.mark.usefixtures("one_thread")


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_actor_critic_shapes_and_parameter_count() -> None:
    net = create("policy", "kosugi_actor_critic")
    assert _n_params(net) == 70_601
    f = net.forward_features(torch.rand(2, 3, 64, 64))
    assert f["h6"].shape == (2, 45, 3, 3) and f["pooled"].shape == (2, 45)
    logits, value = net(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 12, 33) and value.shape == (2,)
    other = KosugiActorCritic(num_params=5, levels=9)
    assert other(torch.rand(1, 3, 64, 64))[0].shape == (1, 5, 9)
    assert all(m.eps == 2e-5 for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))


def test_actor_critic_rejects_bad_input_and_parameters() -> None:
    net = KosugiActorCritic()
    with pytest.raises(InputError, match="N x 3 x 64 x 64"):
        net(torch.rand(1, 3, 128, 128))
    with pytest.raises(InputError, match="N x 3 x 64 x 64"):
        net(torch.rand(1, 1, 64, 64))
    with pytest.raises(InputError, match="float"):
        net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ParameterError, match="odd"):
        KosugiActorCritic(levels=32)


def test_critic_architecture() -> None:
    critic = create("discriminator", "kosugi_critic")
    assert _n_params(critic) == 49_921
    assert critic(torch.rand(3, 3, 64, 64)).shape == (3, 1)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    with pytest.raises(InputError, match="kosugi_critic"):
        critic(torch.rand(3, 3, 32, 32))


def test_loader_errors_name_the_problem(tmp_path) -> None:
    net = KosugiActorCritic()
    with pytest.raises(DataError, match="does not exist"):
        load_chainer_npz(net, tmp_path / "nope.npz")
    arrays = {k: t.detach().numpy() for k, t in chainer_key_map(net).items()}
    del arrays["dc6/W"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(DataError, match="missing keys dc6/W"):
        load_chainer_npz(net, tmp_path / "partial.npz")
    arrays = {k: t.detach().numpy() for k, t in chainer_key_map(KosugiActorCritic(levels=17)).items()}
    np.savez(tmp_path / "l17.npz", **arrays)
    with pytest.raises(DataError, match="expects"):
        load_chainer_npz(net, tmp_path / "l17.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_chainer_npz(net, tmp_path / "junk.npz")


def test_loader_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    src = KosugiActorCritic()
    for m in src.modules():  # non-trivial running stats
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    arrays = {k: t.detach().numpy() for k, t in chainer_key_map(src).items()}
    arrays["bn1/N"] = np.array(7)
    np.savez(tmp_path / "w.npz", **arrays)
    dst = KosugiActorCritic(weights=str(tmp_path / "w.npz"))
    for (k1, v1), (k2, v2) in zip(src.state_dict().items(), dst.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2), k1


@pytest.fixture(scope="module")
def released() -> tuple[KosugiActorCritic, dict[str, np.ndarray]]:
    weights = shared_path("reference", "kosugi", "generator_weights_for_demo.npz")
    ref = shared_path("reference", "kosugi", "policy_reference.npz")
    net = KosugiActorCritic(weights=str(weights)).eval()
    with np.load(ref) as z:
        return net, {k: z[k] for k in z.files}


@pytest.mark.parametrize("suffix", ["", "_inter_linear"])
def test_released_weights_reproduce_reference_logits_and_actions(released, suffix: str) -> None:
    net, ref = released
    with torch.no_grad():
        f = net.forward_features(torch.from_numpy(ref["obs" + suffix]))
    np.testing.assert_allclose(f["logits"].numpy(), ref["logits" + suffix], atol=1e-4, rtol=0)
    np.testing.assert_array_equal(f["logits"].argmax(-1).numpy(), ref["actions" + suffix])
    np.testing.assert_allclose(f["value"].numpy(), ref["value" + suffix], atol=1e-4, rtol=0)


def test_released_weights_reproduce_reference_intermediates(released) -> None:
    net, ref = released
    with torch.no_grad():
        f = net.forward_features(torch.from_numpy(ref["obs"]))
    for key in ("h3", "h4", "h5", "h6", "pooled"):
        np.testing.assert_allclose(f[key].numpy(), ref[key], atol=5e-5, rtol=0, err_msg=key)
    np.testing.assert_allclose(torch.log_softmax(f["logits"], -1).numpy(), ref["log_probs"], atol=1e-4, rtol=0)
    # the slider values our software derives from the network's argmax levels are the reference's params
    software = create("software", "lightroom_basic")
    params = software.levels_to_params(f["logits"].argmax(-1), 33)
    np.testing.assert_array_equal(params.numpy(), ref["params"])
