"""The read side of MLflow tracking: where the store is, whether it can be used, and run lookups.

``zoo runs``, ``--run`` (enhance, eval, export) and ``--resume`` use these; they need no trainer. Training-time
logging (the :class:`zoo.train.tracking.Tracker`) builds on them.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import TrainingError

DEFAULT_URI = "sqlite:///mlflow.db"


def resolve_uri(cli_uri: str | None = None, recipe_uri: str | None = None) -> tuple[str, str]:
    """The tracking URI and where it came from (``cli``, ``env``, ``recipe`` or ``default``)."""
    if cli_uri:
        return cli_uri, "cli"
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env, "env"
    if recipe_uri:
        return recipe_uri, "recipe"
    return DEFAULT_URI, "default"


SQLITE_HEADER = b"SQLite format 3\x00"
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")  # database servers (with +driver variants): MLflow connects
OTHER_SCHEMES = ("databricks", "databricks-uc", "uc")


def check_uri(uri: str, timeout: float = 5.0) -> None:
    """Raise a :class:`TrainingError` sentence when the tracking store at ``uri`` cannot be used.

    Checked before anything is created (no run folder is left behind by a store that fails later):

    - ``http(s)://``: the server answers ``/health`` and MLflow's REST API (a web server that is not MLflow is
      refused; one that needs credentials is left to MLflow);
    - ``sqlite:///PATH``: the folder exists and is writable, and an existing file is an SQLite database;
    - ``file:`` URIs and plain paths (file stores): MLflow 3 refuses them unless ``MLFLOW_ALLOW_FILE_STORE`` is
      set, then the folder must be a writable folder;
    - database servers (``postgresql``, ``mysql``, ``mssql``) and Databricks: left to MLflow;
    - any other scheme is refused, listing the accepted ones.
    """
    from urllib.parse import urlparse

    hint = (
        "Start the server, point --tracking-uri / MLFLOW_TRACKING_URI / tracking.uri at one that runs, "
        "or turn tracking off with --set tracking.enabled=false."
    )
    scheme = urlparse(uri).scheme.lower()
    base = scheme.split("+", 1)[0]
    if scheme in ("http", "https"):
        _check_http(uri, timeout, hint)
    elif base == "sqlite":
        _check_sqlite(uri, hint)
        prepare_store(uri)  # created (or migrated) once, under a file lock
    elif base in DATABASE_SCHEMES or scheme in OTHER_SCHEMES:
        return
    elif scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):  # a path (or a Windows drive letter)
        _check_file_store(uri, scheme, hint)
    else:
        raise TrainingError(
            f"The MLflow tracking URI {uri} has the unknown scheme {scheme!r}. Use sqlite:///PATH/mlflow.db (a "
            "local store), http(s)://HOST:PORT (a tracking server), or a database URI "
            "(postgresql://, mysql://, mssql://). " + hint
        )


def _check_http(uri: str, timeout: float, hint: str) -> None:
    import json

    root = uri.rstrip("/")
    try:
        with urllib.request.urlopen(root + "/health", timeout=timeout):  # noqa: S310 (a URL the user configured)
            pass
    except urllib.error.HTTPError:
        pass  # the server answered (perhaps an older MLflow without /health): the API call below decides
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrainingError(f"The MLflow tracking server at {uri} cannot be reached ({reason}). {hint}") from None
    api = root + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(api, timeout=timeout) as response:  # noqa: S310
            body = response.read(1 << 20)
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return  # an MLflow server with authentication: MLflow's client sends the credentials
        raise TrainingError(
            f"The server at {uri} is not an MLflow tracking server (its API answered HTTP {exc.code} to "
            f"{api}). Check the address and port. {hint}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise TrainingError(
            f"The server at {uri} is not an MLflow tracking server (its API did not answer with MLflow JSON: "
            f"{type(exc).__name__}). Check the address and port. {hint}"
        ) from None


def _sqlite_path(uri: str) -> Path | None:
    if not uri.lower().split("+", 1)[0].startswith("sqlite") or ":///" not in uri:
        return None
    rest = uri.split(":///", 1)[1].split("?", 1)[0]
    if rest in ("", ":memory:"):
        return None
    return Path(rest)


def _check_sqlite(uri: str, hint: str) -> None:
    db = _sqlite_path(uri)
    if db is None:
        return  # in-memory or an unusual form: MLflow decides
    folder = db.parent if str(db.parent) else Path(".")
    if not folder.is_dir():
        raise TrainingError(f"The MLflow store {uri} cannot be created: folder {folder} does not exist. {hint}")
    if not os.access(folder, os.W_OK):
        raise TrainingError(f"The MLflow store {uri} cannot be written: folder {folder} is read-only. {hint}")
    if db.is_dir():
        raise TrainingError(f"The MLflow store {uri} names a folder ({db}); name a database file. {hint}")
    if db.is_file() and db.stat().st_size > 0:
        try:
            with db.open("rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise TrainingError(f"The MLflow store {uri} cannot be read: {exc.strerror or exc}. {hint}") from None
        if header != SQLITE_HEADER:
            raise TrainingError(
                f"The MLflow store {uri}: {db} exists but is not an SQLite database; MLflow would fail on it. "
                f"Name a new file (it is created) or an existing MLflow database. {hint}"
            )


def _check_file_store(uri: str, scheme: str, hint: str) -> None:
    from urllib.parse import unquote, urlparse

    path = Path(unquote(urlparse(uri).path)) if scheme == "file" else Path(uri)
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true", "yes"):
        raise TrainingError(
            f"The MLflow tracking URI {uri} is a file store, which MLflow 3 no longer accepts. Use a database "
            f"store such as sqlite:///{path.with_suffix('.db') if path.suffix != '.db' else path} (the zoo's "
            "default is sqlite:///mlflow.db; 'mlflow migrate-filestore' moves old runs), or set "
            "MLFLOW_ALLOW_FILE_STORE=true to keep the file store."
        )
    if path.exists() and not path.is_dir():
        raise TrainingError(f"The MLflow file store {uri}: {path} is a file, not a folder. {hint}")
    parent = path if path.exists() else path.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise TrainingError(f"The MLflow file store {uri}: {parent} is not a writable folder. {hint}")


def prepare_store(uri: str) -> None:
    """Create (or migrate) a local sqlite store once, holding a file lock: two first-time runs in one folder would
    otherwise race on MLflow's schema creation ("duplicate column")."""
    db = _sqlite_path(uri)
    if db is None or uri in _PREPARED:
        return
    from mlflow.tracking import MlflowClient

    lock = db.parent / f".{db.name}.lock"
    try:
        with file_lock(lock):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except OSError as exc:
        raise TrainingError(f"The MLflow store {uri} cannot be prepared: {exc.strerror or exc}.") from None
    _PREPARED.add(uri)


_PREPARED: set[str] = set()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive OS lock on ``path`` (waiting for it); serialises one-time set-ups across processes."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process serialisation (MLflow's own retries remain)
        yield
        return
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def checkpoint_for_run(run_id: str, uri: str | None = None) -> Path:
    """The newest checkpoint of ``run_id``: its local file if still there, else the logged artifact."""
    from mlflow.tracking import MlflowClient

    uri, _ = resolve_uri(uri)
    check_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except Exception:
        raise TrainingError(
            f"MLflow run {run_id} is not in the store {uri}. 'zoo runs' lists the runs there; "
            "--tracking-uri or MLFLOW_TRACKING_URI selects another store."
        ) from None
    local = run.data.tags.get("zoo.checkpoint")
    if local and Path(local).is_file():
        return Path(local)  # read with weights_only=True, whatever the tag names
    import mlflow.artifacts

    # Never a folder a tag names (anyone who can write to the store could aim it anywhere): the run's own
    # cache folder, named by the id the store returned for this run.
    dst = download_dir(run.info.run_id)
    try:
        dst.mkdir(parents=True, exist_ok=True)
        got = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"checkpoints/{'last.pt'}", dst_path=str(dst), tracking_uri=uri
        )
    except Exception as exc:
        raise TrainingError(f"MLflow run {run_id} has no checkpoint (neither {local} nor an artifact): {exc}") from None
    return Path(got)


def download_dir(run_id: str) -> Path:
    """Where artifacts of MLflow run ``run_id`` are downloaded: ``$ZOO_CACHE_DIR`` (default
    ``$XDG_CACHE_HOME/enhance-zoo`` or ``~/.cache/enhance-zoo``) ``/runs/<run id>``.

    Example:
        >>> download_dir("0123abcd").name
        '0123abcd'
    """
    import re

    if not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", run_id):
        raise TrainingError(f"{run_id!r} is not an MLflow run id (letters, digits, '-' and '_').")
    base = os.environ.get("ZOO_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(base) / "enhance-zoo" if not os.environ.get("ZOO_CACHE_DIR") else Path(base)
    return root / "runs" / run_id


def list_runs(uri: str | None = None, experiment: str | None = None, max_results: int = 20) -> list[dict[str, Any]]:
    """Recent runs of the store (newest first): id, experiment, recipe, status, start, step and last metrics."""
    from mlflow.tracking import MlflowClient

    resolved, _ = resolve_uri(uri)
    check_uri(resolved)
    client = MlflowClient(tracking_uri=resolved)
    if experiment:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            from zoo.errors import DataError, available, suggest

            raise DataError(
                f"No experiment {experiment!r} in {resolved}.{suggest(experiment, names)} {available(names)}"
            )
        exps = [exp]
    else:
        exps = client.search_experiments()
    if not exps:
        return []
    by_id = {e.experiment_id: e.name for e in exps}
    runs = client.search_runs(list(by_id), max_results=max_results, order_by=["attributes.start_time DESC"])
    out = []
    for run in runs:
        metrics = {k: v for k, v in run.data.metrics.items() if not k.startswith(("system/", "perf/", "lr/"))}
        out.append(
            {
                "run_id": run.info.run_id,
                "experiment": by_id.get(run.info.experiment_id, run.info.experiment_id),
                "recipe": run.data.tags.get("zoo.recipe", run.info.run_name or ""),
                "status": run.info.status,
                "start_time": run.info.start_time,
                "step": run.data.tags.get("zoo.checkpoint_step", ""),
                "metrics": metrics,
            }
        )
    return out
