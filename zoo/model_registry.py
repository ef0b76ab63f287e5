"""MLflow models without pickles: the weights-only ``model`` artifact, the Model Registry, and loading by URI.

A run's final generator is logged as the artifact folder ``model/`` holding ``generator.pt``, a weights-only file
(:mod:`zoo.weights`: the generator block and its state dict) and a short ``README.md``. It has no ``MLmodel``
flavour file: MLflow's flavours for PyTorch (``mlflow.pytorch``) pickle the network object, and whoever loads a
pickle from a shared store runs whatever code it holds. A zoo model is loaded with ``torch.load(weights_only=True)``
and rebuilt from its registered generator name, so reading a model from a store never runs code from it.

- :func:`log_weights_model`: log a generator as ``model/`` of the active (or a given) run;
- :func:`register_model`: ``zoo train --register NAME``: a new version of registered model ``NAME`` whose source
  is the run's ``model/`` folder (``MlflowClient.create_model_version``; MLflow's ``register_model`` wants a
  flavoured "logged model", which this is deliberately not);
- :func:`load_model_uri`: ``zoo enhance --model models:/NAME/VERSION`` (also ``models:/NAME@ALIAS`` and
  ``runs:/RUN_ID/model``): download the folder to a temporary place, read it weights-only, delete the download.

The trade-off (docs/training.md): ``mlflow.pytorch.load_model`` and ``mlflow.pyfunc.load_model`` do not load these
models, and MLflow's serving (``mlflow models serve``) does not serve them; ``zoo enhance --model URI`` or
:func:`load_model_uri` from Python does.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from zoo.errors import DataError
from zoo.weights import WEIGHTS_FILE, build_from_weights, read_weights, save_weights, weights_from_checkpoint

__all__ = [
    "MODEL_ARTIFACT",
    "check_model_name",
    "is_model_uri",
    "load_model_uri",
    "log_weights_model",
    "register_model",
]

MODEL_ARTIFACT = "model"
_URI_RE = re.compile(r"^(models:/[^/@]+(/[^/]+|@[^/]+)|runs:/[0-9a-zA-Z]+(/.*)?)$")
_README = """# enhance-zoo model (weights only)

`{file}` is a weights-only PyTorch file: {{"format": "enhance-zoo-weights", "generator_block": {{...}},
"state_dict": {{...}}, "meta": {{...}}}}. It holds no pickled code and loads with `torch.load(weights_only=True)`.

Generator: `{generator}`

    zoo enhance PHOTOS... -o OUT --model {uri}
    python -c "from zoo.model_registry import load_model_uri; gen, meta, run = load_model_uri('{uri}')"

`mlflow.pytorch.load_model` does not load it on purpose: that would unpickle a network object.
"""


def is_model_uri(text: str) -> bool:
    """True for ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` and ``runs:/RUN_ID[/path]``."""
    return bool(_URI_RE.match(str(text)))


def log_weights_model(
    generator: nn.Module,
    block: Mapping[str, Any],
    *,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> str:
    """Log ``generator`` as the weights-only ``model/`` folder of a run; returns ``runs:/RUN_ID/model``.

    Args:
        generator: the trained network.
        block: its generator block (rebuilds it).
        run_id: the run to log to (default: MLflow's active run, with its tracking URI).
        tracking_uri: the store of ``run_id``.
        meta: plain values stored in the file (recipe, step, ...).
    """
    import mlflow

    with tempfile.TemporaryDirectory(prefix="zoo-model-") as tmp:
        folder = Path(tmp) / MODEL_ARTIFACT
        save_weights(folder / WEIGHTS_FILE, generator, block, meta)
        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise DataError("log_weights_model: no run_id given and no active MLflow run.")
            run_id = active.info.run_id
            uri = f"runs:/{run_id}/{MODEL_ARTIFACT}"
            _write_readme(folder, block, uri)
            mlflow.log_artifacts(str(folder), artifact_path=MODEL_ARTIFACT)
        else:
            from mlflow.tracking import MlflowClient

            uri = f"runs:/{run_id}/{MODEL_ARTIFACT}"
            _write_readme(folder, block, uri)
            MlflowClient(tracking_uri).log_artifacts(run_id, str(folder), artifact_path=MODEL_ARTIFACT)
    return uri


def _write_readme(folder: Path, block: Mapping[str, Any], uri: str) -> None:
    text = _README.format(file=WEIGHTS_FILE, generator=block.get("name"), uri=uri)
    (folder / "README.md").write_text(text, encoding="utf-8")


def check_model_name(name: str) -> str:
    """Refuse a registered-model name MLflow or a ``models:/NAME/VERSION`` URI could not carry.

    Example:
        >>> check_model_name("low-light.v2")
        'low-light.v2'
    """
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$", str(name or "")):
        raise DataError(
            f"--register {name!r}: a registered model name is letters, digits, '_', '-' and '.', starting with a "
            "letter or digit (at most 100 characters)."
        )
    return name


def register_model(
    run_id: str,
    name: str,
    *,
    tracking_uri: str | None = None,
    checkpoint: str | Path | None = None,
    description: str | None = None,
) -> str:
    """Register the run's weights-only ``model/`` as a new version of ``name``; returns ``models:/NAME/VERSION``.

    When the run has no ``model/generator.pt`` (``tracking.log_model`` was off), it is written first from
    ``checkpoint`` (the run's final checkpoint).

    Raises:
        DataError: a bad name, an unknown run, or a run without a model and no checkpoint to make one from.
    """
    from mlflow.tracking import MlflowClient

    from zoo.tracking import check_uri, resolve_uri

    check_model_name(name)
    uri, _ = resolve_uri(tracking_uri)
    check_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except Exception:
        raise DataError(f"MLflow run {run_id} is not in the store {uri}; nothing to register.") from None
    logged = {a.path for a in client.list_artifacts(run_id, MODEL_ARTIFACT)}
    if f"{MODEL_ARTIFACT}/{WEIGHTS_FILE}" not in logged:
        if checkpoint is None:
            raise DataError(
                f"MLflow run {run_id} has no weights-only model ({MODEL_ARTIFACT}/{WEIGHTS_FILE}) and no checkpoint "
                "was given to make one; train with tracking.log_model=true."
            )
        with tempfile.TemporaryDirectory(prefix="zoo-register-") as tmp:
            path = weights_from_checkpoint(checkpoint, Path(tmp) / WEIGHTS_FILE)
            state = read_weights(path)
            gen = build_from_weights(state, where=str(checkpoint))
            log_weights_model(gen, state["generator_block"], run_id=run_id, tracking_uri=uri, meta=state["meta"])
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(
                name, description=description or "enhance-zoo generator (weights-only; zoo enhance --model)"
            )
        except MlflowException:  # created meanwhile by another process
            pass
    version = client.create_model_version(
        name,
        source=f"runs:/{run_id}/{MODEL_ARTIFACT}",
        run_id=run_id,
        tags={"zoo.format": "enhance-zoo-weights", "zoo.recipe": run.data.tags.get("zoo.recipe", "")},
        description=description,
    )
    return f"models:/{name}/{version.version}"


def _run_of(client: Any, uri: str) -> str | None:
    """The run id behind a model URI (None when MLflow cannot say)."""
    if uri.startswith("runs:/"):
        return uri[len("runs:/") :].split("/", 1)[0]
    body = uri[len("models:/") :]
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            return client.get_model_version_by_alias(name, alias).run_id
        name, version = body.split("/", 1)
        if version.isdigit():
            return client.get_model_version(name, version).run_id
    except Exception:
        return None
    return None


def load_model_uri(uri: str, tracking_uri: str | None = None) -> tuple[nn.Module, dict[str, Any], str | None]:
    """Load a weights-only zoo model from an MLflow model URI.

    Args:
        uri: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/latest`` or ``runs:/RUN_ID/model``.
        tracking_uri: the store (default: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``); the Model
            Registry is the same store.

    Returns:
        ``(generator in eval mode on the CPU, the file's meta dict, the run id that produced it or None)``.

    Raises:
        DataError: a malformed URI, a model the store does not hold, or a folder that is not a zoo weights-only
            model (e.g. a pickled ``mlflow.pytorch`` model, which is refused rather than unpickled).
    """
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    from zoo.tracking import check_uri, resolve_uri

    if not is_model_uri(uri):
        raise DataError(
            f"--model {uri!r} is not an MLflow model URI: use models:/NAME/VERSION, models:/NAME@ALIAS or "
            "runs:/RUN_ID/model."
        )
    store, _ = resolve_uri(tracking_uri)
    check_uri(store)
    with tempfile.TemporaryDirectory(prefix="zoo-model-uri-") as tmp:
        try:
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=store))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"MLflow model {uri} cannot be found in the store {store} ({first}). The MLflow UI or "
                "MlflowClient().search_model_versions() lists registered models; --tracking-uri or "
                "MLFLOW_TRACKING_URI selects another store."
            ) from None
        weights = got if got.is_file() else got / WEIGHTS_FILE
        if not weights.is_file():
            found = sorted(p.name for p in got.iterdir())[:8] if got.is_dir() else []
            if "MLmodel" in found:
                raise DataError(
                    f"MLflow model {uri} is a pickled mlflow.pytorch model, which enhance-zoo does not load "
                    "(unpickling runs code from the store). Load its run's checkpoint instead with --run RUN_ID "
                    "(read with weights_only=True), or retrain to log the weights-only form."
                )
            raise DataError(f"MLflow model {uri} holds no {WEIGHTS_FILE} (found {found}); it is not a zoo model.")
        state = read_weights(weights)
        gen = build_from_weights(state, where=f"MLflow model {uri}")
    run_id = _run_of(MlflowClient(tracking_uri=store), uri)
    return gen, dict(state.get("meta") or {}), run_id
