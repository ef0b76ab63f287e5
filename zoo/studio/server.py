"""Run the studio under uvicorn (one process, loopback by default) and clean up after it."""

from __future__ import annotations

import logging

from zoo.studio.state import Studio

log = logging.getLogger("zoo.studio")


def serve(studio: Studio, *, host: str = "127.0.0.1", port: int = 8765, announce=print) -> None:
    """Serve ``studio`` until interrupted, then remove its private folder.

    Args:
        studio: the state to serve.
        host: the address to bind (``127.0.0.1`` unless the user says otherwise).
        port: the TCP port (``0``: any free one).
        announce: called with a line naming the page's address once the socket is bound.
    """
    import uvicorn

    from zoo.studio.app import create_app

    app = create_app(studio, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False, lifespan="on")
    server = uvicorn.Server(config)

    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets=sockets)
        if server.started:
            for s in server.servers:
                for sock in s.sockets:
                    h, p = sock.getsockname()[:2]
                    shown = f"[{h}]" if ":" in h else h
                    announce(f"zoo studio: open http://{shown}:{p}/ (Ctrl+C stops it; uploads in {studio.folder})")
                    return

    server.startup = startup
    try:
        server.run()
    finally:
        studio.close()
