"""User-facing errors: each carries a sentence that says what was wrong, where, and what is accepted.

The CLI prints :class:`ZooError` messages without a traceback; anything else is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """Base class of every error whose message is meant for the user."""


class RegistryError(ZooError):
    """A component could not be registered (bad or duplicate name)."""


class UnknownComponentError(ZooError, KeyError):
    """A name that no registry of the asked kind holds."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


class ParameterError(ZooError, TypeError):
    """An unknown, missing or ill-typed parameter of a component."""


class RecipeError(ZooError, ValueError):
    """A recipe that cannot be loaded or does not validate."""


class DataError(ZooError, ValueError):
    """Input data (files, folders, tensors) that cannot be used."""


class InputError(ZooError, ValueError):
    """A tensor or value given to a component that it does not accept."""


class TrainingError(ZooError, RuntimeError):
    """Training had to stop (non-finite loss, missing requirement, unreachable tracking server)."""


def suggest(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean 'x'?"`` for the nearest candidates, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def available(candidates: Iterable[str], limit: int = 30) -> str:
    """Return ``"Available: a, b, c."`` (truncated to ``limit`` names)."""
    names = sorted(candidates)
    if not names:
        return "None is available."
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"Available: {shown}{more}."
