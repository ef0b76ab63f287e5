# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""`zoo train` under signals and concurrency, for real: SIGTERM / SIGINT checkpoint the current step, mark the MLflow
run KILLED and print the resume command; a run folder is locked while it trains (a second --resume is refused, a
stale lock is taken over); plain progress lines when stderr is not a terminal; run names stay inside out_dir."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.test_train_infra_tiny import mlflow_store, mlflow_template, tiny_recipe, tiny_trainer  # noqa: F401
from zoo.errors import RecipeError
from zoo.train.checkpoint import load_checkpoint
from zoo.train.supervision import LOCK_NAME, PlainProgress, RunLock

TINY = Path(__file__).resolve().parent / "test_train_infra_tiny.py"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false", **extra)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(TINY), *args],
        cwd=cwd,
        env=_env(ZOO_PROGRESS_INTERVAL="0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_progress(proc: subprocess.Popen, timeout: float = 120.0) -> list[str]:
    """Read stderr until a plain progress line shows training is under way (stderr is a pipe, not a terminal)."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.startswith("train: step ") and " 0/" not in line.split("(")[0]:
            return lines
    proc.kill()
    raise AssertionError("no progress line: " + "".join(lines))


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_the_step_marks_killed_and_prints_resume(tmp_path, mlflow_store, sig):
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=500, tracking=True, sleep=0.1, checkpoint_every=1000)
    proc = _start(["train", str(recipe), "--tracking-uri", mlflow_store], tmp_path)
    seen = _wait_for_progress(proc)
    proc.send_signal(sig)
    code, out, err = _finish(proc)
    err = "".join(seen) + err
    assert code == 128 + sig, out + err
    assert f"Stopped by {sig.name} at step" in out and "Traceback" not in err
    step = int(out.split("at step ")[1].split(".")[0])
    assert 1 <= step < 500
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == step  # the checkpoint is of the step at which it stopped (checkpoint_every is 1000)
    run = MlflowClient(mlflow_store).get_run(state["mlflow_run_id"])
    assert run.info.status == "KILLED"
    resume = next(line.split("resume:", 1)[1].strip() for line in out.splitlines() if "resume:" in line)
    argv = shlex.split(resume)
    assert argv[:3] == ["zoo", "train", str(recipe)] and argv[argv.index("--resume") + 1] == str(run_dir)
    if sig == signal.SIGTERM:  # the printed command resumes (here to two more steps, without the sleep)
        more = ["--set", f"train.steps={step + 2}", "--set", "train.sleep=0", "-q"]
        done = subprocess.run(
            [sys.executable, str(TINY), *argv[1:], *more], cwd=tmp_path, env=_env(), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == step + 2
        assert MlflowClient(mlflow_store).get_run(state["mlflow_run_id"]).info.status == "FINISHED"


@pytest.mark.slow
def test_second_resume_of_a_training_run_is_refused_and_a_stale_lock_is_taken_over(tmp_path, tiny_trainer):
    from zoo.recipe import load_recipe
    from zoo.train.base import train

    recipe = tiny_recipe(tmp_path / "r.yaml", steps=2)
    run_dir = train(load_recipe(recipe), quiet=True).run_dir
    more = ["--set", "train.steps=400", "--set", "train.sleep=0.1", "--set", "train.checkpoint_every=1000"]
    holder = _start(["train", str(recipe), "--resume", str(run_dir), *more], tmp_path)
    _wait_for_progress(holder)
    second = subprocess.run(
        [sys.executable, str(TINY), "train", str(recipe), "--resume", str(run_dir), *more, "-q"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert second.returncode == 2 and f"process {holder.pid}" in second.stderr and "is in use" in second.stderr
    holder.send_signal(signal.SIGINT)
    code, out, err = _finish(holder)
    assert code == 130 and "Stopped by SIGINT" in out, err
    stopped_at = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]

    # a lock left by a process that died (SIGKILL: no clean-up) does not block the next resume
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": "here", "started": "earlier"}))
    third = subprocess.run(
        [sys.executable, str(TINY), "train", str(recipe), "--resume", str(run_dir)]
        + ["--set", f"train.steps={stopped_at + 1}"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert third.returncode == 0, third.stderr
    assert f"took over the lock of run folder {run_dir} from process {dead.pid}" in third.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == stopped_at + 1


def test_run_lock_in_process(tmp_path):
    with RunLock(tmp_path) as lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid() and lock.held
        other = RunLock(tmp_path)
        from zoo.errors import TrainingError

        with pytest.raises(TrainingError, match=f"process {os.getpid()}"):
            other.acquire()
    with RunLock(tmp_path):  # released: free again
        pass


@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs", "a/b", "..", "a\\b"])
def test_run_names_with_path_parts_are_refused_before_anything_is_created(tmp_path, tiny_trainer, name):
    from zoo.recipe import load_recipe
    from zoo.train.base import train

    recipe = tiny_recipe(tmp_path / "r.yaml", steps=1)
    rec = load_recipe(recipe, [f"name={name}", f"train.out_dir={tmp_path / 'out'}"])
    with pytest.raises(RecipeError, match="must be a plain folder name"):
        train(rec, quiet=True)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape").exists()


def test_plain_progress_lines_at_the_interval_and_at_the_end():
    import io

    stream = io.StringIO()
    progress = PlainProgress(total=10, start=0, interval=3600.0, stream=stream)
    for step in range(1, 10):
        progress.update(step, {"loss": 0.5})
    assert stream.getvalue() == ""  # an hour has not passed
    progress.update(10, {"loss": 0.25})
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("train: step 10/10 (100%)") and "loss=0.25" in line and "s/step" in line
    every = PlainProgress(total=5, start=2, interval=0.0, stream=stream)
    for step in (3, 4, 5):
        every.update(step, {})
    assert len(stream.getvalue().splitlines()) == 4


def test_training_with_stderr_not_a_terminal_prints_progress(tmp_path, tiny_trainer, capfd, monkeypatch):
    from zoo.recipe import load_recipe
    from zoo.train.base import train

    monkeypatch.setenv("ZOO_PROGRESS_INTERVAL", "0")
    train(load_recipe(tiny_recipe(tmp_path / "r.yaml", steps=3)), quiet=False)
    err = capfd.readouterr().err
    assert [line.split(" (")[0] for line in err.splitlines() if line.startswith("train: step")] == [
        "train: step 1/3",
        "train: step 2/3",
        "train: step 3/3",
    ]
