# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""Resume after a real SIGKILL: same MLflow run, nothing checkpointed lost, the same losses as an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.test_train_infra_tiny import mlflow_store, mlflow_template, tiny_recipe  # noqa: F401
from zoo.recipe import load_recipe
from zoo.train.base import train
from zoo.train.checkpoint import load_checkpoint

TINY = Path(__file__).resolve().parent / "test_train_infra_tiny.py"


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _zoo(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(TINY), *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _history(client: MlflowClient, run_id: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = defaultdict(list)
    for m in client.get_metric_history(run_id, "loss/g"):
        out[m.step].append(m.value)
    return out


@pytest.mark.slow
def test_sigkill_mid_step_then_resume_by_run_id_matches_uninterrupted(tmp_path, mlflow_store, mlflow_template):
    from tests.test_train_infra_tiny import register_tiny, unregister_tiny

    register_tiny()
    try:
        _scenario(tmp_path, mlflow_store, mlflow_template)
    finally:
        unregister_tiny()


def _scenario(tmp_path: Path, mlflow_store: str, template: Path) -> None:
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=8, tracking=True, sleep=0.3)
    common = ["train", str(recipe), "--quiet", "--tracking-uri", mlflow_store]

    victim = _zoo(*common, "--experiment", "killed", cwd=tmp_path)
    deadline = time.time() + 240
    mine: list[Path] = []
    while time.time() < deadline and victim.poll() is None:
        mine = list((tmp_path / "runs" / "tiny").glob("*/checkpoints/last.pt"))
        if mine and load_checkpoint(mine[0])["step"] >= 4:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed"
    time.sleep(0.1)  # inside the next step (each sleeps 0.3 s)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    killed_ckpt = mine[0]
    kept = load_checkpoint(killed_ckpt)
    assert 4 <= kept["step"] < 8 and not list(killed_ckpt.parent.glob("*.tmp"))
    run_id = kept["mlflow_run_id"]
    client = MlflowClient(mlflow_store)
    assert client.get_run(run_id).info.status == "RUNNING"  # killed: nobody closed it

    resumed = _zoo(*common, "--resume", run_id, cwd=tmp_path)
    # meanwhile, the uninterrupted reference runs here (one thread, as in the subprocesses; its own store)
    (tmp_path / "ref").mkdir()
    shutil.copy(template, tmp_path / "ref" / "mlflow.db")
    ref_store = f"sqlite:///{tmp_path / 'ref' / 'mlflow.db'}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = train(
            load_recipe(recipe, ["train.sleep=0", "train.out_dir=" + str(tmp_path / "ref")]),
            tracking_uri=ref_store,
            experiment="reference",
            quiet=True,
        )
    finally:
        torch.set_num_threads(threads)
    out2, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out2
    assert run_id in out2 and "Trained tiny for 8 steps" in out2

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["zoo.resumed_from_step"] == str(kept["step"])
    assert len(client.search_runs([run.info.experiment_id])) == 1  # the same run continued
    expected = {s: v[0] for s, v in _history(MlflowClient(ref_store), ref.run_id).items()}
    got = _history(client, run_id)
    assert sorted(got) == sorted(expected) == list(range(1, 9))
    for s, values in got.items():
        assert all(v == expected[s] for v in values), (s, values, expected[s])
    assert load_checkpoint(killed_ckpt)["step"] == 8
