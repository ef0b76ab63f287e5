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


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, never expanding deep or huge (aliased) structures.

    Messages quote user values with it, so a hostile recipe (e.g. YAML anchors expanding exponentially) cannot
    make an error message itself explode.

    Example:
        >>> short_repr(list(range(1000)), 30)
        '[0, 1, 2, 3, 4, 5, ...]'
    """
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 3, 6, 6, 6, 6
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` (or ``np.load(allow_pickle=False)``) refused a file, as a clause.

    The libraries' own messages advise loading the file unsafely; a zoo message never passes that advice on.

    Example:
        >>> load_failure(ValueError("Object arrays cannot be loaded when allow_pickle=False"))
        'it holds Python objects, not only numbers (a pickle that could run code), which the zoo does not load'
    """
    import re

    text = str(exc).strip()
    pickled = ("Unsupported global", "unsupported GLOBAL", "Object arrays cannot be loaded", "is blocked")
    if any(m in text for m in pickled):
        return "it holds Python objects, not only numbers (a pickle that could run code), which the zoo does not load"
    if "pickled data" in text and "allow_pickle" in text:  # numpy found no .npy/.npz signature
        return "it is not a NumPy .npz/.npy file (NumPy could only read it as a pickle, which the zoo never loads)"
    detail = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)", text, re.S)
    if detail is not None or "weights_only" in text:
        why = " ".join(detail.group(1).split())[:200] if detail is not None else "not a PyTorch file"
        return f"it is not a readable weights file ({why or 'not a PyTorch file'})"
    first = text.splitlines()[0][:200] if text else ""
    return f"it is not a readable weights file ({type(exc).__name__}{': ' + first if first else ''})"
