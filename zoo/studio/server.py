"""Run the studio under uvicorn (one process, loopback by default) and clean up after it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from zoo.studio.state import Studio

log = logging.getLogger("zoo.studio")


def make_server(
    studio: Studio, *, host: str = "127.0.0.1", port: int = 8765, announce: Callable[[str], Any] = print
) -> Any:
    """A ``uvicorn.Server`` for ``studio`` that calls ``announce`` with the page's address once it listens.

    Args:
        studio: the state to serve (its private folder is removed when the server shuts down).
        host: the address to bind (``127.0.0.1`` unless the user says otherwise).
        port: the TCP port (``0``: any free one; the announced address names the real one).
        announce: called with one line, e.g. ``zoo studio: open http://127.0.0.1:8765/ ...``.

    Returns:
        The server: ``server.run()`` blocks until Ctrl+C (or ``server.should_exit = True``).
    """
    import uvicorn

    from zoo.studio.app import create_app

    config = uvicorn.Config(create_app(studio, host=host), host=host, port=port, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        for s in getattr(server, "servers", []) if server.started else []:
            for sock in s.sockets:
                h, p = sock.getsockname()[:2]
                shown = f"[{h}]" if ":" in h else h
                announce(f"zoo studio: open http://{shown}:{p}/ (Ctrl+C stops it; uploads in {studio.folder})")
                return

    server.startup = startup
    return server


def serve(studio: Studio, *, host: str = "127.0.0.1", port: int = 8765, announce: Callable[[str], Any] = print) -> None:
    """Serve ``studio`` until interrupted, then remove its private folder (see :func:`make_server`)."""
    try:
        make_server(studio, host=host, port=port, announce=announce).run()
    finally:
        studio.close()
