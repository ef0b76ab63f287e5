"""enhance-zoo: unpaired image enhancement as a zoo of registered, swappable components.

Importing ``zoo`` is cheap (no torch); components are imported when built::

    import zoo
    g = zoo.create("generator", {"name": "enlightengan_unet"})
    zoo.list_components("discriminator")
"""

from __future__ import annotations

from zoo.registry import KINDS, create, entries, get, register

__version__ = "0.1.0"


def list_components(kind: str | None = None, pattern: str | None = None) -> list[str]:
    """Names of registered components, optionally of one kind and matching a glob (``'*gan*'``)."""
    return [e.name for e in entries(kind, pattern)]


__all__ = ["KINDS", "__version__", "create", "entries", "get", "list_components", "register"]
