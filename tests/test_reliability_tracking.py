# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""Tracking stores that cannot work are refused before anything is created (no orphan run folders); first-time
store creation is serialised; `--run` downloads into the run's own cache folder, never where a tag points."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.test_train_infra_tiny import mlflow_store, mlflow_template, tiny_recipe, tiny_trainer  # noqa: F401
from zoo.errors import TrainingError
from zoo.tracking import check_uri, checkpoint_for_run, download_dir


@pytest.fixture
def web_server(tmp_path):
    """A plain web server on loopback that is not MLflow (it serves a folder)."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "health").write_text("OK")  # even a /health that answers does not make it MLflow

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path / "www"), **k)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _train_with(tmp_path: Path, uri: str):
    from zoo.recipe import load_recipe
    from zoo.train.base import train

    rec = load_recipe(tiny_recipe(tmp_path / "r.yaml", steps=1, tracking=True))
    return train(rec, tracking_uri=uri, quiet=True)


def _bad_stores(tmp_path: Path, web: str) -> list[tuple[str, str]]:
    not_db = tmp_path / "notes.db"
    not_db.write_text("these are my notes, not a database\n")
    return [
        (web, "is not an MLflow tracking server"),
        ("ftp://127.0.0.1/mlflow", "unknown scheme 'ftp'"),
        (f"file://{tmp_path / 'store'}", "is a file store"),
        (str(tmp_path / "store"), "is a file store"),
        (f"sqlite:///{not_db}", "is not an SQLite database"),
        (f"sqlite:///{tmp_path}", "names a folder"),
    ]


def test_unusable_stores_are_refused_with_a_sentence(tmp_path, web_server, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri, expected in _bad_stores(tmp_path, web_server):
        with pytest.raises(TrainingError, match=expected):
            check_uri(uri)


def test_training_against_an_unusable_store_leaves_no_run_folder(tmp_path, web_server, tiny_trainer, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri, expected in _bad_stores(tmp_path, web_server):
        with pytest.raises(TrainingError, match=expected):
            _train_with(tmp_path, uri)
        assert not (tmp_path / "runs").exists(), uri
    assert (tmp_path / "notes.db").read_text().startswith("these are my notes")  # untouched


def test_a_usable_sqlite_store_and_an_opted_in_file_store_pass(tmp_path, monkeypatch, mlflow_store):
    check_uri(mlflow_store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_uri(f"file://{tmp_path / 'fs'}")


@pytest.mark.slow
def test_two_first_time_stores_do_not_race(tmp_path):
    """Two processes create the same fresh sqlite store at once; the file lock makes one wait for the other."""
    code = (
        "import sys; from zoo.tracking import check_uri; from mlflow.tracking import MlflowClient\n"
        "uri = 'sqlite:///' + sys.argv[1]\n"
        "check_uri(uri)\n"
        "c = MlflowClient(uri); c.create_run(c.create_experiment(sys.argv[2]))\n"
    )
    db = tmp_path / "fresh.db"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(db), f"exp{i}"],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    from mlflow.tracking import MlflowClient

    names = {e.name for e in MlflowClient(f"sqlite:///{db}").search_experiments()}
    assert {"exp0", "exp1"} <= names


def test_run_download_goes_to_the_runs_own_cache_folder(tmp_path, mlflow_store, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    client = MlflowClient(mlflow_store)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    evil = tmp_path / "somewhere_else"
    client.set_tag(run_id, "zoo.run_dir", str(evil))  # anyone who can write to the store can set this
    client.set_tag(run_id, "zoo.checkpoint", str(tmp_path / "gone" / "last.pt"))  # no longer there
    ckpt = tmp_path / "src" / "last.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"checkpoint bytes")
    client.log_artifact(run_id, str(ckpt), artifact_path="checkpoints")
    got = checkpoint_for_run(run_id, mlflow_store)
    assert got.read_bytes() == b"checkpoint bytes"
    assert got.is_relative_to(download_dir(run_id)) and download_dir(run_id) == tmp_path / "cache" / "runs" / run_id
    assert not evil.exists()
    with pytest.raises(TrainingError, match="is not an MLflow run id"):
        download_dir("../../x")
