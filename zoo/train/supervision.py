"""What keeps a training run safe around its loop: the run-folder lock, stop signals, plain progress, folder names.

- :class:`RunLock`: one process trains in a run folder at a time. The lock is an OS file lock (``flock``) on
  ``<run dir>/.zoo-train.lock``, which records the holder's pid and host: a second ``zoo train --resume`` of the
  same run is refused naming that process, and a lock left by a process that died is free again (the OS drops
  it with the process), so it is taken over with a note.
- :class:`StopSignals`: SIGINT (Ctrl-C) and SIGTERM (``kill``, schedulers) ask the loop to stop after the current
  step; the trainer then saves a checkpoint of that step, marks the MLflow run KILLED and says how to resume. A
  second signal stops at once.
- :class:`PlainProgress`: when stderr is not a terminal (CI logs, ``nohup``), a plain progress line every
  ``ZOO_PROGRESS_INTERVAL`` seconds (default 30) and at the end, instead of a live bar nobody sees.
- :func:`run_folder_name`: the recipe ``name`` becomes a folder under ``train.out_dir``; names with path parts
  are refused (not sanitised), so a run folder is always where the user expects it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from zoo.errors import RecipeError, TrainingError

log = logging.getLogger("zoo.train")
LOCK_NAME = ".zoo-train.lock"
PROGRESS_ENV = "ZOO_PROGRESS_INTERVAL"
DEFAULT_PROGRESS_INTERVAL = 30.0


# ----------------------------------------------------------------------------------------------- names


def run_folder_name(name: str) -> str:
    """Check that a recipe ``name`` can be a folder under ``train.out_dir`` (refused otherwise, not sanitised).

    Raises:
        RecipeError: a name with ``/`` or ``\\``, an absolute path, ``.``/``..``, or an empty name.

    Example:
        >>> run_folder_name("enlightengan_small")
        'enlightengan_small'
    """
    text = str(name)
    bad = (
        not text.strip()
        or text in (".", "..")
        or "/" in text
        or "\\" in text
        or "\x00" in text
        or Path(text).is_absolute()
        or (len(text) > 1 and text[1] == ":")  # a Windows drive
    )
    if bad:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise RecipeError(
            f"recipe name {shown!r} cannot be a run folder: the name becomes <train.out_dir>/<name>/<time>, so it "
            "must be a plain folder name (no '/', '\\', '..' or absolute path), e.g. name: my_experiment."
        )
    return text


def inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` resolves to somewhere inside ``folder``."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------- lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class RunLock:
    """An exclusive lock on a run folder, held while a process trains in it.

    Example:
        >>> import tempfile
        >>> with RunLock(Path(tempfile.mkdtemp())) as lock:
        ...     lock.held
        True
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.held = False
        self._fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise a :class:`TrainingError` naming the process that holds it."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): an exclusive create, with a pid check for stale locks
            return self._acquire_by_create()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held open for the run)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = _parse(fh.read())
            fh.close()
            raise TrainingError(self._busy(holder)) from None
        fh.seek(0)
        previous = _parse(fh.read())
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.warning(
                "took over the lock of run folder %s from process %s, which is no longer running",
                self.run_dir,
                previous.get("pid"),
            )
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(_me()) + "\n")
        fh.flush()
        self._fh, self.held = fh, True
        return self

    def _acquire_by_create(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _parse(self.path.read_text(encoding="utf-8", errors="replace"))
                pid = holder.get("pid")
                if isinstance(pid, int) and _pid_alive(pid):
                    raise TrainingError(self._busy(holder)) from None
                log.warning("took over the stale lock of run folder %s (process %s is gone)", self.run_dir, pid)
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(_me()) + "\n")
            self.held = True
            return self
        raise TrainingError(f"Could not lock run folder {self.run_dir} ({self.path} keeps reappearing).")

    def _busy(self, holder: Mapping[str, Any]) -> str:
        who = f"process {holder.get('pid', '?')}"
        if holder.get("host") and holder.get("host") != socket.gethostname():
            who += f" on {holder['host']}"
        since = holder.get("started")
        when = f" (since {since})" if since else ""
        return (
            f"Run folder {self.run_dir} is in use: {who}{when} is training in it. Two runs writing one folder "
            f"(and one MLflow run) would overwrite each other's checkpoints; wait for it to finish or stop it "
            f"(kill {holder.get('pid', 'PID')}: it saves a checkpoint first), then resume."
        )

    def release(self) -> None:
        """Drop the lock. With flock the (emptied) file stays: unlinking it would let a process that opened it
        just before lock an orphaned file while another locks a new one."""
        if not self.held:
            return
        self.held = False
        if self._fh is None:  # the exclusive-create fallback: the file is the lock
            with contextlib.suppress(OSError):
                self.path.unlink()
            return
        with contextlib.suppress(OSError):
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
        with contextlib.suppress(OSError):
            self._fh.close()  # closing drops the flock
        self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _me() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------------------------- signals


class Interrupted(Exception):  # noqa: N818 (not an error: a requested stop)
    """Raised by the loop after it checkpointed the step at which a stop signal arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class StopSignals:
    """Turn SIGINT / SIGTERM into a request to stop after the current step (a second one stops at once)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._first = 0.0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            if time.monotonic() - self._first < 2.0:  # the same stop, delivered twice (terminal + torchrun)
                return
            self.__exit__()  # a second, deliberate signal: stop now
            raise KeyboardInterrupt
        self.received, self._first = signum, time.monotonic()
        log.warning(
            "%s received: stopping after this step (with a checkpoint); send it again to stop at once",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        self._previous.clear()


# ----------------------------------------------------------------------------------------------- progress


def progress_interval() -> float:
    """Seconds between plain progress lines (``ZOO_PROGRESS_INTERVAL``, default 30)."""
    try:
        value = float(os.environ.get(PROGRESS_ENV, DEFAULT_PROGRESS_INTERVAL))
    except ValueError:
        return DEFAULT_PROGRESS_INTERVAL
    return value if math.isfinite(value) and value >= 0 else DEFAULT_PROGRESS_INTERVAL


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class PlainProgress:
    """Plain progress lines on a stream that is not a terminal: every ``interval`` seconds and at the end."""

    def __init__(self, total: int, start: int, interval: float | None = None, stream: IO[str] | None = None) -> None:
        self.total, self.start = total, start
        self.interval = progress_interval() if interval is None else interval
        self.stream = stream or sys.stderr
        self._t0 = time.monotonic()
        self._last = self._t0
        self._step = start

    def line(self, step: int, metrics: Mapping[str, float]) -> str:
        elapsed = time.monotonic() - self._t0
        done = step - self.start
        per = elapsed / done if done > 0 else float("nan")
        eta = per * (self.total - step) if done > 0 else float("nan")
        pct = 100.0 * step / self.total if self.total else 100.0
        shown = "  ".join(f"{k}={_num(v)}" for k, v in list(metrics.items())[:6])
        timing = f", {per:.3g} s/step, ETA {_duration(eta)}" if done > 0 else ""
        return f"train: step {step}/{self.total} ({pct:.0f}%), {_duration(elapsed)} elapsed{timing}  {shown}".rstrip()

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        self._step = step
        now = time.monotonic()
        if now - self._last >= self.interval or step >= self.total:
            self._last = now
            print(self.line(step, metrics), file=self.stream, flush=True)


def _num(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)
