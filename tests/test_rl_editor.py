"""The rl_editor generator: thumbnails, parity with the released agent, full-resolution editing, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import shared_path
from zoo.errors import InputError, ParameterError
from zoo.registry import create
from zoo.rl.editor import RLEditor, area_thumbnail

pytestmark = pytest.mark.usefixtures("one_thread")


def test_area_thumbnail_integer_factor_is_average_pooling() -> None:
    x = torch.rand(2, 3, 128, 192)
    expect = F.avg_pool2d(x[..., :, :], kernel_size=(2, 3))
    assert torch.allclose(area_thumbnail(x, 64, quantize=False), expect, atol=1e-6)
    const = torch.full((1, 3, 97, 131), 0.25)
    assert torch.allclose(area_thumbnail(const, 64, quantize=False), torch.full((1, 3, 64, 64), 0.25), atol=1e-6)
    q = area_thumbnail(x, 64)
    assert torch.equal(q, torch.round(q * 255) / 255)
    assert area_thumbnail(torch.rand(1, 3, 20, 30), 64).shape == (1, 3, 64, 64)  # enlarging works too


def test_area_thumbnail_matches_opencv_inter_area() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(301, 457, 3), dtype=np.uint8)
    ref = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    ours = area_thumbnail(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0).numpy()
    diff = np.abs(ours - ref) * 255
    assert diff.max() <= 1.0 + 1e-4  # rounding of exact halves
    assert (diff > 0.5).mean() < 0.01


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(shared_path("reference", "kosugi", "policy_reference.npz")) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def released_editor() -> RLEditor:
    weights = shared_path("reference", "kosugi", "generator_weights_for_demo.npz")
    return create("generator", {"name": "rl_editor", "weights": str(weights)}).eval()


def test_lightroom_software_with_released_actions_reproduces_edited_64(reference) -> None:
    software = create("software", "lightroom_basic")
    params = software.levels_to_params(torch.from_numpy(reference["actions"]), 33)
    np.testing.assert_array_equal(params.numpy(), reference["params"])
    out = software.apply(torch.from_numpy(reference["obs"]), params).permute(0, 2, 3, 1).numpy()
    diff = np.abs(out - reference["edited_64"])
    # clarity != 0 in these rows: the reference's uint8 floor before its bilateral filter flips rare pixels
    assert diff.mean() < 1e-5, diff.mean()
    assert np.quantile(diff, 0.999) < 1e-3 and diff.max() < 2e-3, diff.max()


def test_released_editor_end_to_end_on_the_reference_thumbnails(released_editor, reference) -> None:
    with torch.no_grad():
        out = released_editor(torch.from_numpy(reference["obs"]))
    np.testing.assert_array_equal(out["actions"].numpy(), reference["actions"])
    np.testing.assert_array_equal(out["params"].numpy(), reference["params"])
    np.testing.assert_allclose(out["value"].numpy(), reference["value"], atol=1e-4)
    diff = np.abs(out["image"].permute(0, 2, 3, 1).numpy() - reference["edited_64"])
    assert diff.mean() < 1e-5 and diff.max() < 2e-3


def test_released_editor_thumbnails_of_the_dicm_photos_match_the_reference(released_editor, reference) -> None:
    """Full-size DICM photos -> our area thumbnail -> the reference's observation (<= 1 LSB) and its actions."""
    cv2 = pytest.importorskip("cv2")
    photos = []
    for name in ("01", "02", "03"):
        bgr = cv2.imread(str(shared_path("data", "lowlight", "DICM", f"{name}.jpg")))
        photos.append(torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255)
    for i, photo in enumerate(photos):
        thumb = released_editor.thumbnail(photo[None])
        diff = (thumb[0] - torch.from_numpy(reference["obs"][3 + i])).abs() * 255
        assert float(diff.max()) <= 1.0 + 1e-4 and float((diff > 0.5).float().mean()) < 0.005
        with torch.no_grad():
            out = released_editor(photo[None])
        np.testing.assert_array_equal(out["actions"][0].numpy(), reference["actions"][3 + i])
        assert out["image"].shape == photo[None].shape


def test_editor_modes_shapes_and_determinism() -> None:
    torch.manual_seed(0)
    editor = RLEditor()
    x = torch.rand(2, 3, 90, 130) * 0.5
    editor.eval()
    with torch.no_grad():
        a, b = editor(x), editor(x)
    assert a["image"].shape == x.shape and a["params"].shape == (2, 12) and a["logits"].shape == (2, 12, 33)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["actions"], a["logits"].argmax(-1))
    assert torch.equal(a["params"], (a["actions"].float() - 16) / 16)
    assert 0 <= float(a["image"].min()) and float(a["image"].max()) <= 1
    assert editor.names == list(editor.software.names) and len(editor.names) == 12
    editor.train()
    torch.manual_seed(1)
    s1 = editor.decide(x)["actions"]
    torch.manual_seed(2)
    s2 = editor.decide(x)["actions"]
    assert not torch.equal(s1, s2)  # sampling in train mode


def test_editor_k_and_l_mismatch_and_bad_input_are_clear_errors() -> None:
    with pytest.raises(ParameterError, match="policy.levels is 17"):
        create("generator", {"name": "rl_editor", "policy": {"name": "kosugi_actor_critic", "levels": 17}})
    with pytest.raises(ParameterError, match="policy.num_params is 5"):
        create("generator", {"name": "rl_editor", "policy": {"name": "kosugi_actor_critic", "num_params": 5}})
    small = create("generator", {"name": "rl_editor", "software": {"name": "editor_chain"}, "levels": 9})
    assert small.policy.num_params == 3 and small.policy.levels == 9
    with pytest.raises(InputError, match="rl_editor"):
        small(torch.rand(3, 64, 64))
    with pytest.raises(InputError, match="NaN"):
        small(torch.full((1, 3, 64, 64), float("nan")))


def test_pt_weights_round_trip(tmp_path) -> None:
    torch.manual_seed(3)
    a = RLEditor().eval()
    torch.save(a.state_dict(), tmp_path / "w.pt")
    b = create("generator", {"name": "rl_editor", "weights": str(tmp_path / "w.pt")}).eval()
    x = torch.rand(1, 3, 70, 70)
    with torch.no_grad():
        assert torch.equal(a(x)["actions"], b(x)["actions"])


def test_zoo_enhance_writes_named_slider_sidecars(tmp_path) -> None:
    """The released weights through `zoo enhance --recipe`: the JSON sidecar holds the 12 named slider values."""
    from PIL import Image
    from typer.testing import CliRunner

    from zoo.cli.main import app

    weights = shared_path("reference", "kosugi", "generator_weights_for_demo.npz")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: t\ndata: {name: synthetic, size: 2, resize: 64}\n"
        f"model: {{generator: {{name: rl_editor, weights: '{weights}'}}, algorithm: {{name: a2c}},\n"
        "  discriminators: {critic: {network: {name: kosugi_critic}, objective: {name: wgan_gp}}}}\n"
        "train: {trainer: rl}\ntracking: {enabled: false}\n"
    )
    rng = np.random.default_rng(0)
    img = (rng.random((80, 120, 3)) * 120).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    res = CliRunner().invoke(
        app,
        [
            "enhance",
            str(tmp_path / "in.png"),
            "--out",
            str(tmp_path / "out"),
            "--recipe",
            str(recipe),
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    sidecars = list((tmp_path / "out").rglob("*.json"))
    assert len(sidecars) == 1
    data = json.loads(sidecars[0].read_text())
    params = data["params"]
    assert list(params) == [
        "dehaze",
        "clarity",
        "contrast",
        "exposure",
        "temp",
        "tint",
        "whites",
        "blacks",
        "highlights",
        "shadows",
        "vibrance",
        "saturation",
    ]
    editor = create("generator", {"name": "rl_editor", "weights": str(weights)}).eval()
    with torch.no_grad():
        expect = editor(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)["params"][0]
    assert [params[n] for n in editor.names] == pytest.approx(expect.tolist(), abs=1e-6)


@pytest.mark.parametrize("hw", [(64, 64), (65, 64), (100, 73), (321, 481), (64, 999)])
def test_area_thumbnail_equals_the_dense_area_resize(hw):
    """The segment-sum area resize equals the dense definition: each output cell averages what it covers."""
    from zoo.rl.editor import area_thumbnail

    def coverage(n_in: int, n_out: int) -> torch.Tensor:
        edges = torch.arange(n_out + 1, dtype=torch.float64) * (n_in / n_out)
        pix = torch.arange(n_in, dtype=torch.float64)[None, :]
        overlap = (torch.minimum(edges[1:, None], pix + 1) - torch.maximum(edges[:-1, None], pix)).clamp_min(0)
        return overlap * (n_out / n_in)

    h, w = hw
    x = torch.rand(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(h * w))
    expected = coverage(h, 64) @ x @ coverage(w, 64).t()
    torch.testing.assert_close(area_thumbnail(x, 64, quantize=False), expected, rtol=0, atol=1e-12)
