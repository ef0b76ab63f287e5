# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""MLflow tracking: what a run records, the unreachable-server stop, URI precedence, ``zoo runs``, loading by run id."""

from __future__ import annotations

import socket

import mlflow
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tests.test_train_infra_tiny import mlflow_store, mlflow_template, tiny_recipe, tiny_trainer  # noqa: F401
from zoo.checkpoint_io import load_generator
from zoo.errors import DataError, TrainingError
from zoo.recipe import load_recipe
from zoo.train.base import train
from zoo.train.tracking import DEFAULT_URI, check_uri, resolve_uri

pytestmark = pytest.mark.usefixtures("one_thread")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends


def test_unreachable_server_stops_before_training(tmp_path, tiny_trainer, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(tiny_trainer, "build", lambda self: calls.append("build"))
    recipe = load_recipe(tiny_recipe(tmp_path / "r.yaml", tracking=True))
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrainingError, match=f"tracking server at {uri} cannot be reached.*tracking.enabled=false"):
        train(recipe, tracking_uri=uri, quiet=True)
    assert calls == [] and not (tmp_path / "runs").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the environment variable is checked the same way
    with pytest.raises(TrainingError, match="cannot be reached"):
        train(recipe, quiet=True)


def test_uri_precedence(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(None, None) == (DEFAULT_URI, "default") == ("sqlite:///mlflow.db", "default")
    assert resolve_uri(None, "file:/r") == ("file:/r", "recipe")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_uri(None, "file:/r") == ("http://env:5000", "env")
    assert resolve_uri("http://cli:1", "file:/r") == ("http://cli:1", "cli")
    with pytest.raises(TrainingError, match="does not exist"):
        check_uri("sqlite:///no/such/folder/mlflow.db")


def test_tracked_run_records_everything_and_loads_by_run_id(tmp_path, tiny_trainer, mlflow_store, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    recipe = load_recipe(
        tiny_recipe(tmp_path / "r.yaml", steps=8, tracking=True, sleep=0.15),
        ["tracking.system_metrics=true", "tracking.log_model=true"],
    )
    res = train(recipe, tracking_uri=mlflow_store, experiment="exp-a", quiet=True)
    client = MlflowClient(mlflow_store)
    run = client.get_run(res.run_id)
    assert run.info.status == "FINISHED" and res.experiment == "exp-a"
    assert client.get_experiment(run.info.experiment_id).name == "exp-a"
    params = run.data.params
    assert params["train.steps"] == "8" and params["data.name"] == "synthetic" and params["model.channels"] == "4"
    tags = run.data.tags
    assert tags["zoo.version"] and tags["zoo.world_size"] == "1" and tags["zoo.device"] == "cpu"
    assert tags["component.data"] == "dataset:synthetic" and tags["zoo.trainer"] == "tiny_test"
    assert tags["zoo.checkpoint_step"] == "8" and tags["zoo.model_uri"]
    if (tmp_path.parent / ".git").exists() or tags.get("zoo.git_commit"):
        assert len(tags["mlflow.source.git.commit"]) == 40
    history = client.get_metric_history(res.run_id, "loss/g")
    assert [m.step for m in history] == list(range(1, 9))
    assert history[-1].value == pytest.approx(res.metrics["loss/g"])
    lr = client.get_metric_history(res.run_id, "lr/generator")
    assert lr[0].value == pytest.approx(0.01) and lr[-1].value == pytest.approx(0.01 * 0.7**2)
    assert client.get_metric_history(res.run_id, "perf/images_per_s")[0].value > 0
    assert any(k.startswith("system/cpu_utilization") for k in run.data.metrics), sorted(run.data.metrics)
    assert run.data.metrics["data/skipped_files"] == 0
    artifacts = {a.path for a in client.list_artifacts(res.run_id)}
    assert {"recipe.yaml", "samples", "checkpoints"} <= artifacts
    assert {a.path for a in client.list_artifacts(res.run_id, "samples")} == {
        "samples/step_0000003.png",
        "samples/step_0000006.png",
        "samples/step_0000008.png",
    }
    raw = yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{res.run_id}/recipe.yaml"))
    assert raw == recipe.to_dict()

    # the logged model is weights-only (no pickle): zoo loads it by URI, mlflow.pytorch does not
    from zoo.model_registry import load_model_uri

    assert tags["zoo.model_uri"] == f"runs:/{res.run_id}/model"
    assert {a.path for a in client.list_artifacts(res.run_id, "model")} == {"model/generator.pt", "model/README.md"}
    logged, meta, logged_run = load_model_uri(tags["zoo.model_uri"], mlflow_store)
    assert logged_run == res.run_id and meta["step"] == 8 and meta["recipe"] == "tiny"
    gen, rec = load_generator(run_id=res.run_id, tracking_uri=mlflow_store)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(logged(x)["image"], gen(x)["image"])
    assert rec["name"] == "tiny"

    # the checkpoint artifact is used when the local file is gone
    res.checkpoint.unlink()
    gen2, _ = load_generator(run_id=res.run_id, tracking_uri=mlflow_store)
    torch.testing.assert_close(gen2(x)["image"], gen(x)["image"])
    with pytest.raises(TrainingError, match="is not in the store"):
        load_generator(run_id="0" * 32, tracking_uri=mlflow_store)

    from zoo.cli.main import app

    out = CliRunner().invoke(app, ["runs", "--tracking-uri", mlflow_store])
    assert out.exit_code == 0, out.output
    assert res.run_id in out.output.replace("\n", "") or res.run_id[:12] in out.output
    assert "FINISHED" in out.output and "exp-a" in out.output
    missing = CliRunner().invoke(app, ["runs", "--tracking-uri", mlflow_store, "--experiment", "exp-b"])
    assert missing.exit_code != 0 and isinstance(missing.exception, DataError)
    assert "exp-a" in str(missing.exception)


def test_failed_run_is_marked_failed(tmp_path, tiny_trainer, mlflow_store):
    recipe = load_recipe(tiny_recipe(tmp_path / "r.yaml", steps=6, tracking=True, nan_at=3))
    with pytest.raises(TrainingError, match="step 3"):
        train(recipe, tracking_uri=mlflow_store, quiet=True)
    client = MlflowClient(mlflow_store)
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert run.info.status == "FAILED"
    assert [m.value != m.value for m in client.get_metric_history(run.info.run_id, "loss/g")][-1]  # the NaN is logged
