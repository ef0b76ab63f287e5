# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""A real `mlflow server` on loopback (sqlite backend, artifacts in a temp folder): a run logs params, metrics and
artifacts there; a 2-process run logs once, from rank 0; `zoo enhance --run` loads the model back from the
server's artifacts; and when the server stops mid-run, training finishes, keeps its checkpoints and says what was
not logged.

The server is started once for this module (it takes 15-30 s); the last test stops it, so it stays last."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_train_infra_tiny import mlflow_template, tiny_recipe  # noqa: F401
from zoo.train.checkpoint import load_checkpoint
from zoo.train.distributed import torchrun_args

TINY = Path(__file__).resolve().parent / "test_train_infra_tiny.py"
MLFLOW = Path(sys.executable).with_name("mlflow")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MLFLOW.is_file(), reason="the mlflow command is not installed beside this Python"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, mlflow_template):
    root = tmp_path_factory.mktemp("mlflow_server")
    shutil.copy(mlflow_template, root / "server.db")
    port = _free_port()
    cmd = [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "-w", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "art")]
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    else:
        proc.kill()
    if proc.poll() is not None:
        pytest.fail("mlflow server did not start: " + (root / "server.log").read_text()[-2000:])
    yield {"uri": uri, "proc": proc, "root": root}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false", **extra)
    env["ZOO_CACHE_DIR"] = str(tmp_path / "cache")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _tiny(args: list[str], tmp_path: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TINY), *args], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, **kw
    )


def _run_id(stdout: str) -> str:
    return next(line.split("MLflow run:")[1].split()[0] for line in stdout.splitlines() if "MLflow run:" in line)


def test_train_logs_to_the_server_ddp_logs_once_and_enhance_loads_it_back(server, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = server["uri"]
    client = MlflowClient(uri)
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=3, tracking=True, checkpoint_every=2, sample_every=2)
    done = _tiny(["train", str(recipe), "--tracking-uri", uri, "--experiment", "served", "-q"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run = client.get_run(_run_id(done.stdout))
    assert run.info.status == "FINISHED" and run.data.params["train.steps"] == "3"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/g")] == [1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"recipe.yaml", "checkpoints", "samples"} <= artifacts
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["checkpoints/last.pt"]

    # two processes (the loopback launcher of zoo train --nproc 2): one run, each step logged once, by rank 0
    args, extra = torchrun_args(2)
    cmd = [sys.executable, "-m", "zoo.train.distributed", *args, str(TINY), "train", str(recipe)]
    cmd += ["--tracking-uri", uri, "--experiment", "served_ddp", "-q"]
    ddp = subprocess.run(
        cmd, cwd=tmp_path, env={**_env(tmp_path), **extra, "PYTHONPATH": str(TINY.parent.parent)}, capture_output=True
    )
    out = ddp.stdout.decode()
    assert ddp.returncode == 0, out + ddp.stderr.decode()
    (exp,) = [e for e in client.search_experiments() if e.name == "served_ddp"]
    (ddp_run,) = client.search_runs([exp.experiment_id])
    assert ddp_run.data.tags["zoo.world_size"] == "2" and ddp_run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(ddp_run.info.run_id, "loss/g")] == [1, 2, 3]
    assert out.count("Trained tiny for 3 steps") == 1

    # zoo enhance --run: the local run folder is gone, so the checkpoint comes from the server's artifacts
    shutil.rmtree(tmp_path / "runs")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    enh = _tiny(["enhance", "a.png", "--run", run.info.run_id, "--tracking-uri", uri, "--out", "o", "-q"], tmp_path)
    assert enh.returncode == 0, enh.stdout + enh.stderr
    assert (tmp_path / "o" / "a.png").is_file()
    (cached,) = (tmp_path / "cache" / "runs" / run.info.run_id).rglob("last.pt")
    weights = load_checkpoint(cached)["modules"]["generator"]
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_server_stopping_mid_run_does_not_stop_training(server, tmp_path):
    """Runs last in this module: it stops the shared server."""
    recipe = tiny_recipe(
        tmp_path / "r.yaml", steps=30, tracking=True, sleep=0.15, checkpoint_every=5, sample_every=1000, samples=0
    )
    proc = subprocess.Popen(
        [sys.executable, str(TINY), "train", str(recipe), "--tracking-uri", server["uri"]],
        cwd=tmp_path,
        env=_env(tmp_path, ZOO_PROGRESS_INTERVAL="0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    while True:  # the first progress line at step 2 or later (lines come every 0.2 s, not at every step)
        line = proc.stderr.readline()
        seen.append(line)
        match = re.match(r"train: step (\d+)/", line)
        if not line or (match and int(match.group(1)) >= 2):
            break
    assert line, "".join(seen)
    os.killpg(server["proc"].pid, signal.SIGKILL)  # the server goes away mid-run
    server["proc"].wait(timeout=30)
    out, err = proc.communicate(timeout=300)
    err = "".join(seen) + err
    assert proc.returncode == 0, out + err
    assert "Trained tiny for 30 steps" in out and "Traceback" not in err
    assert "stopped answering at step" in err and "not logged to run" in err and "metric batches" in err
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 30
