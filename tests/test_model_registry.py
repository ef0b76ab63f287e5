# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""Weights-only MLflow models: ``zoo train --register``, ``zoo enhance --model models:/...``, no pickle anywhere."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from tests.test_train_infra_tiny import mlflow_store, mlflow_template, tiny_recipe, tiny_trainer  # noqa: F401
from zoo.checkpoint_io import load_generator
from zoo.cli.main import app
from zoo.errors import DataError, RecipeError
from zoo.inference import load_model
from zoo.model_registry import is_model_uri, load_model_uri, register_model
from zoo.model_sources import parse_model_spec
from zoo.weights import WEIGHTS_FORMAT, load_weights_file, read_weights, save_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(tmp_path, store, *extra: str):
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=4, tracking=True)
    res = CliRunner().invoke(app, ["train", str(recipe), "--tracking-uri", store, "--quiet", *extra])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def _photos(root):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 90, (20, 28, 3), dtype=np.uint8)).save(root / f"p{k}.png")
    return root


def test_register_then_enhance_by_model_uri(tmp_path, tiny_trainer, mlflow_store):
    out = _train(tmp_path, mlflow_store, "--set", "tracking.log_model=true", "--register", "tiny-enhancer")
    assert "registered:  models:/tiny-enhancer/1" in out
    client = MlflowClient(mlflow_store)
    version = client.get_model_version("tiny-enhancer", "1")
    run_id = version.run_id
    assert version.source == f"runs:/{run_id}/model" and version.tags["zoo.format"] == "enhance-zoo-weights"
    # the logged model is a weights-only folder: no MLmodel, no pickled network
    assert {a.path for a in client.list_artifacts(run_id, "model")} == {"model/generator.pt", "model/README.md"}

    gen, meta, uri_run = load_model_uri("models:/tiny-enhancer/1", mlflow_store)
    assert uri_run == run_id and meta["recipe"] == "tiny" and meta["step"] == 4
    ref, _ = load_generator(run_id=run_id, tracking_uri=mlflow_store)
    x = torch.rand(1, 3, 12, 16)
    torch.testing.assert_close(gen(x)["image"], ref(x)["image"])
    loaded = load_model(model_uri="models:/tiny-enhancer/1", tracking_uri=mlflow_store, device="cpu")
    assert loaded.run_id == run_id and loaded.source == "MLflow model models:/tiny-enhancer/1"

    src = _photos(tmp_path / "in")
    res = CliRunner().invoke(
        app,
        ["enhance", str(src), "-o", str(tmp_path / "out"), "--model", "models:/tiny-enhancer/1"]
        + ["--tracking-uri", mlflow_store, "-q"],
    )
    assert res.exit_code == 0, res.output
    got = np.asarray(Image.open(tmp_path / "out" / "p0.png"), dtype=np.float32) / 255.0
    x0 = torch.from_numpy(np.array(Image.open(src / "p0.png"))).permute(2, 0, 1)[None].float() / 255.0
    want = ref(x0)["image"][0].permute(1, 2, 0).detach().numpy()
    assert np.abs(got - want).max() <= 1.0 / 255.0 + 1e-6
    downloaded = [p for p in tmp_path.glob("**/generator.pt") if "mlruns" not in p.parts]  # not the store itself
    assert not downloaded  # downloads go to a temporary folder, then away

    # a second run with log_model off: the weights-only model is made from its checkpoint, as version 2
    out = _train(tmp_path, mlflow_store, "--register", "tiny-enhancer")
    assert "models:/tiny-enhancer/2" in out
    gen2, _, run2 = load_model_uri("models:/tiny-enhancer/2", mlflow_store)
    assert run2 != run_id and isinstance(gen2, torch.nn.Module)
    # the runs:/ form of the same folder works as well
    gen3, _, run3 = load_model_uri(f"runs:/{run2}/model", mlflow_store)
    torch.testing.assert_close(gen3(x)["image"], gen2(x)["image"])
    assert run3 == run2


def test_register_refusals(tmp_path, tiny_trainer, mlflow_store):
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=2, tracking=False)
    res = CliRunner().invoke(app, ["train", str(recipe), "--register", "x", "--quiet"])
    assert isinstance(res.exception, RecipeError) and "tracking is off" in str(res.exception)
    res = CliRunner().invoke(app, ["train", str(recipe), "--register", "../bad name", "--quiet"])
    assert isinstance(res.exception, DataError) and "registered model name is letters" in str(res.exception)
    assert not (tmp_path / "runs").exists()  # refused before any training
    with pytest.raises(DataError, match="is not in the store"):
        register_model("0" * 32, "x", tracking_uri=mlflow_store)


def test_model_uri_errors_are_sentences(tmp_path, mlflow_store):
    with pytest.raises(DataError, match="is not an MLflow model URI"):
        load_model_uri("models:/", mlflow_store)
    with pytest.raises(DataError, match=r"MLflow model models:/nothing/1 cannot be found in the store"):
        load_model_uri("models:/nothing/1", mlflow_store)
    assert is_model_uri("models:/a/1") and is_model_uri("models:/a@champion") and is_model_uri("runs:/abc123/model")
    assert not is_model_uri("models:/a") and not is_model_uri("http://x")


def test_a_pickled_mlflow_model_is_refused_not_loaded(tmp_path, mlflow_store):
    client = MlflowClient(mlflow_store)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  pytorch: {pickle_module_name: mlflow.pytorch.pickle_module}\n")
    (folder / "model.pth").write_bytes(pickle.dumps({"not": "loaded"}))
    run_id = client.create_run(client.create_experiment("pickles")).info.run_id
    client.log_artifacts(run_id, str(folder), artifact_path="model")
    with pytest.raises(DataError, match=r"pickled mlflow.pytorch model, which enhance-zoo does not load"):
        load_model_uri(f"runs:/{run_id}/model", mlflow_store)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_weights_files_are_weights_only(tmp_path):
    from zoo.generators.baselines import CLAHE

    path = save_weights(tmp_path / "g.pt", CLAHE(clip_limit=3.0), {"name": "clahe", "clip_limit": 3.0, "weights": "x"})
    state = torch.load(path, weights_only=True)  # plain containers and tensors only
    assert state["format"] == WEIGHTS_FORMAT and state["generator_block"] == {"name": "clahe", "clip_limit": 3.0}
    gen, meta = load_weights_file(path)
    assert gen.clip_limit == 3.0 and meta == {}
    evil = tmp_path / "evil.pt"
    torch.save({"format": WEIGHTS_FORMAT, "generator_block": {"name": "clahe"}, "state_dict": {}, "x": _Evil()}, evil)
    with pytest.raises(DataError, match=r"a pickle that could run code") as info:
        read_weights(evil)
    assert "weights_only=False" not in str(info.value)  # torch's "load it unsafely" advice is not passed on
    other = tmp_path / "other.pt"
    torch.save({"a": torch.zeros(1)}, other)
    with pytest.raises(DataError, match="is not an enhance-zoo weights file"):
        read_weights(other)


def test_model_specs():
    assert parse_model_spec("baseline:clahe") == {"generator": "clahe"}
    assert parse_model_spec("pretrained:x") == {"pretrained": "x"}
    assert parse_model_spec("run:abc") == {"run_id": "abc"}
    assert parse_model_spec("models:/m/2") == {"model_uri": "models:/m/2"}
    assert parse_model_spec("runs:/abc/model") == {"model_uri": "runs:/abc/model"}
    assert parse_model_spec("some/last.pt") == {"checkpoint": "some/last.pt"}
    with pytest.raises(DataError, match="nothing after 'pretrained:'"):
        parse_model_spec("pretrained:")
    with pytest.raises(DataError, match="not an MLflow model URI"):
        parse_model_spec("models:/only-name")
