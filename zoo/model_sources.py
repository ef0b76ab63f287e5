"""Where a model comes from, in one string: the ``--model SPEC`` of ``zoo eval`` and the training-free generators.

``zoo eval --model SPEC`` (repeatable) compares several models in one table. A SPEC is one of:

==============================  ==============================================================================
``baseline:NAME``               a training-free registered generator (``gamma``, ``clahe``,
``generator:NAME``              ``histogram_equalization``, ...); ``generator:{name: clahe, clip_limit: 3}``
                                gives parameters (a YAML mapping)
``pretrained:NAME``             a model shipped in the package (``zoo list pretrained``)
``run:RUN_ID``                  the model of an MLflow run (its checkpoint, read weights-only)
``recipe:PATH``                 the generator a recipe builds (its ``weights:`` if any)
``models:/NAME/VERSION``        a version of the MLflow Model Registry (also ``models:/NAME@ALIAS``)
``runs:/RUN_ID/model``          the weights-only model artifact of a run
``checkpoint:PATH`` or ``PATH``  a zoo checkpoint file or run folder
==============================  ==============================================================================

:func:`parse_model_spec` turns a SPEC into the keyword arguments of :func:`zoo.inference.load_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from zoo.errors import DataError

__all__ = ["parse_model_spec", "training_free_generator"]

_PREFIXES = {
    "baseline": "generator",
    "generator": "generator",
    "pretrained": "pretrained",
    "run": "run_id",
    "recipe": "recipe",
    "checkpoint": "checkpoint",
}
SPEC_HELP = (
    "baseline:NAME / generator:NAME, pretrained:NAME, run:RUN_ID, recipe:PATH, models:/NAME/VERSION, "
    "runs:/RUN_ID/model, or a checkpoint path"
)


def _block(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            import yaml

            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise DataError(f"--generator {text!r} is not a valid YAML mapping: {exc}") from None
        else:
            return {"name": text}
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise DataError(f"A generator is a registered name or a block {{name: ..., <params>}}, got {value!r}.")
    return dict(value)


def training_free_generator(block: str | Mapping[str, Any], where: str = "--generator") -> nn.Module:
    """Build a registered generator that needs no training (contract ``learning == "none"``), in eval mode.

    A generator that learns is refused unless its block names ``weights`` (then those weights are loaded): a
    network with random weights would only add noise to the comparison.

    Args:
        block: a registered name (``"clahe"``), a YAML mapping string or a mapping ``{name: ..., <params>}``.
        where: how the user named it, for messages.

    Raises:
        DataError: a generator that learns and has no weights.
        UnknownComponentError, ParameterError: an unknown name or bad parameters (with suggestions).

    Example:
        >>> training_free_generator("clahe").training
        False
    """
    from zoo.contracts import contract_of
    from zoo.registry import create

    blk = _block(block)
    contract = contract_of("generator", blk)
    learning = getattr(contract, "learning", "backprop")
    if learning != "none" and not blk.get("weights"):
        from zoo.registry import entries

        free = sorted(e.name for e in entries("generator") if "baseline" in e.tags)
        raise DataError(
            f"{where} {blk['name']!r}: this generator learns ({learning}) and would run with random weights. "
            "Give a trained model instead (--pretrained NAME, --checkpoint CKPT, --run RUN_ID or --model "
            f"models:/NAME/VERSION), or a block with weights: PATH. Training-free generators: {', '.join(free)}."
        )
    return create("generator", blk, where=where).eval()


def parse_model_spec(spec: str) -> dict[str, Any]:
    """The :func:`zoo.inference.load_model` keywords a ``--model`` SPEC names (see the module docstring).

    Example:
        >>> parse_model_spec("baseline:clahe")
        {'generator': 'clahe'}
        >>> parse_model_spec("models:/enhancer/3")
        {'model_uri': 'models:/enhancer/3'}
    """
    from zoo.model_registry import is_model_uri

    text = str(spec).strip()
    if not text:
        raise DataError(f"--model needs a value: {SPEC_HELP}.")
    if text.startswith(("models:/", "runs:/")):
        if not is_model_uri(text):
            raise DataError(
                f"--model {text!r} is not an MLflow model URI (models:/NAME/VERSION or runs:/RUN_ID/model)."
            )
        return {"model_uri": text}
    prefix, sep, rest = text.partition(":")
    if sep and prefix in _PREFIXES and rest.strip():
        return {_PREFIXES[prefix]: rest.strip()}
    if sep and prefix in _PREFIXES:
        raise DataError(f"--model {text!r}: nothing after '{prefix}:'. Accepted: {SPEC_HELP}.")
    from pathlib import Path

    if Path(text).exists() or text.endswith((".pt", ".pth")):
        return {"checkpoint": text}
    from zoo.errors import suggest

    raise DataError(
        f"--model {text!r} names no model and no existing file.{suggest(prefix if sep else text, _PREFIXES)} "
        f"Accepted: {SPEC_HELP}."
    )
