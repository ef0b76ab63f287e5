"""The studio's HTTP side: a Starlette app over a :class:`zoo.studio.state.Studio`.

Routes (every ``/api`` answer is JSON, except images):

======  ==============================================  ==========================================================
GET     ``/``, ``/app.js``, ``/style.css``              the page (three fixed files of the package; nothing else)
GET     ``/api/info``                                   mode, model, reason, sliders (names, ranges, neutral)
POST    ``/api/sessions``                               a new session (one per browser tab)
POST    ``/api/sessions/{sid}/photos``                  upload: the raw file as the body, its name in ``X-Filename``
GET     ``/api/sessions/{sid}/photos/{pid}``            the photo's proposal and current sliders
GET     ``/api/sessions/{sid}/photos/{pid}/before``     the preview of the photo as uploaded (JPEG)
GET     ``/api/sessions/{sid}/photos/{pid}/after``      the model's output (generators without sliders; JPEG)
POST    ``/api/sessions/{sid}/photos/{pid}/edit``       ``{"params": {name: value}}`` -> the edited preview (JPEG)
POST    ``/api/sessions/{sid}/photos/{pid}/export``     full resolution, ``zoo edit``'s code path -> file names
GET     ``/api/sessions/{sid}/photos/{pid}/files/{k}``  an exported file, ``k`` in ``image``, ``json``, ``xmp``
======  ==============================================  ==========================================================

Safety: no path on disk is built from a request (ids are dictionary keys); POST requests must carry the
``X-Zoo-Studio`` header, which a cross-site form cannot send without a CORS preflight that this server never
grants; the ``Host`` header must name the address the server was bound to (DNS rebinding); a content security
policy keeps the page to its own scripts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from zoo.errors import ZooError
from zoo.studio.state import NotFound, Studio, UploadTooLarge

log = logging.getLogger("zoo.studio")

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {  # the only files the server reads from its own package
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
EXPORT_TYPES = {"json": "application/json", "xmp": "application/rdf+xml"}
CSRF_HEADER = "x-zoo-studio"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


def create_app(studio: Studio, *, host: str = "127.0.0.1", close_on_shutdown: bool = True) -> Starlette:
    """The Starlette application serving ``studio``.

    Args:
        studio: the state (model, sessions, private folder).
        host: the address the server binds; requests must name it (or a loopback name) in ``Host``.
            ``0.0.0.0`` / ``::`` (every interface) or another IPv6 address accepts any ``Host``.
        close_on_shutdown: remove the private folder when the app shuts down.

    Returns:
        The ASGI app.

    >>> from zoo.studio.state import Studio, studio_model
    >>> studio = Studio(studio_model(None))
    >>> app = create_app(studio)  # serve with uvicorn (zoo.studio.server.serve) or test with TestClient(app)
    >>> studio.close()
    """

    def asset(request: Request) -> Response:
        name, media = ASSETS[request.url.path]
        return Response((STATIC / name).read_bytes(), media_type=media, headers=SECURITY_HEADERS)

    def info(request: Request) -> JSONResponse:
        return JSONResponse(studio.info(), headers=SECURITY_HEADERS)

    def new_session(request: Request) -> JSONResponse:
        session = studio.new_session()
        return JSONResponse({"session": session.id}, headers=SECURITY_HEADERS)

    async def upload(request: Request) -> JSONResponse:
        sid = request.path_params["sid"]
        from urllib.parse import unquote

        name = unquote(request.headers.get("x-filename", "")) or None
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > studio.max_upload_bytes:
            raise UploadTooLarge(
                f"{name or 'the file'} is larger than the upload limit of {studio.max_upload_bytes / 2**20:.0f} MiB."
            )
        up = studio.start_upload(sid, name)
        try:
            async for chunk in request.stream():
                up.write(chunk)
        except BaseException:
            up.discard()
            raise
        photo = await run_in_threadpool(studio.finish_upload, up)
        return JSONResponse(studio.describe(photo), headers=SECURITY_HEADERS)

    def photo_info(request: Request) -> JSONResponse:
        p = request.path_params
        return JSONResponse(studio.describe(studio.photo(p["sid"], p["pid"])), headers=SECURITY_HEADERS)

    def before(request: Request) -> Response:
        p = request.path_params
        return Response(studio.photo(p["sid"], p["pid"]).before_jpeg, media_type="image/jpeg", headers=SECURITY_HEADERS)

    def after(request: Request) -> Response:
        p = request.path_params
        photo = studio.photo(p["sid"], p["pid"])
        if photo.after_jpeg is None:
            raise NotFound("This model has sliders: its result is the edited preview (POST .../edit).")
        return Response(photo.after_jpeg, media_type="image/jpeg", headers=SECURITY_HEADERS)

    async def edit(request: Request) -> Response:
        p = request.path_params
        body = await _json(request)
        t0 = time.perf_counter()
        jpeg = await run_in_threadpool(studio.edit, p["sid"], p["pid"], body.get("params", {}))
        ms = (time.perf_counter() - t0) * 1000.0
        headers = {**SECURITY_HEADERS, "X-Edit-Ms": f"{ms:.1f}"}
        return Response(jpeg, media_type="image/jpeg", headers=headers)

    async def export(request: Request) -> JSONResponse:
        p = request.path_params
        body = await _json(request)
        result = await run_in_threadpool(studio.export, p["sid"], p["pid"], body.get("params"))
        return JSONResponse(result, headers=SECURITY_HEADERS)

    def export_file(request: Request) -> Response:
        p = request.path_params
        kind = p["kind"]
        if kind not in ("image", "json", "xmp"):
            raise NotFound(f"Unknown export file {kind!r} (image, json or xmp).")
        path = studio.export_file(p["sid"], p["pid"], kind)
        media = EXPORT_TYPES.get(kind)
        return FileResponse(path, media_type=media, filename=path.name, headers=SECURITY_HEADERS)

    async def on_zoo_error(request: Request, exc: Exception) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 413 if isinstance(exc, UploadTooLarge) else 400
        log.warning("%s %s: %s", request.method, _short(request.url.path), exc)
        return _error(status, str(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            log.warning("%s %s: no such page", request.method, _short(request.url.path))
            return _error(404, "Not found: this server serves its page, its API and the photos given to it.")
        return _error(status, str(getattr(exc, "detail", "")) or "Bad request.")

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, _short(request.url.path))
        return _error(500, f"The server could not do this ({type(exc).__name__}: {exc}); it keeps running.")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        if close_on_shutdown:
            studio.close()
            log.info("removed the private folder %s", studio.folder)

    sp = "/api/sessions/{sid}/photos"
    routes = [
        *(Route(path, asset, methods=["GET"]) for path in ASSETS),
        Route("/api/info", info, methods=["GET"]),
        Route("/api/sessions", new_session, methods=["POST"]),
        Route(sp, upload, methods=["POST"]),
        Route(sp + "/{pid}", photo_info, methods=["GET"]),
        Route(sp + "/{pid}/before", before, methods=["GET"]),
        Route(sp + "/{pid}/after", after, methods=["GET"]),
        Route(sp + "/{pid}/edit", edit, methods=["POST"]),
        Route(sp + "/{pid}/export", export, methods=["POST"]),
        Route(sp + "/{pid}/files/{kind}", export_file, methods=["GET"]),
    ]
    # Every interface, or an IPv6 address (starlette's host check cuts "[::1]:8765" at its first colon): any Host.
    everywhere = host in ("0.0.0.0", "::", "") or ":" in host
    hosts = ["*"] if everywhere else sorted({host, "127.0.0.1", "localhost"})
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts), Middleware(_RequireHeader)],
        exception_handlers={ZooError: on_zoo_error, HTTPException: on_http, Exception: on_crash},
        lifespan=lifespan,
    )
    app.state.studio = studio
    return app


async def _json(request: Request) -> dict[str, Any]:
    from zoo.errors import InputError

    raw = await request.body()
    if len(raw) > 1_000_000:
        raise InputError("The request body is too large for slider values.")
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError('The request body must be JSON, e.g. {"params": {"exposure": 0.2}}.') from None
    if not isinstance(body, dict):
        raise InputError('The request body must be a JSON object, e.g. {"params": {"exposure": 0.2}}.')
    return body


def _short(path: str) -> str:
    """A request path for the log, with session ids shortened (the log may be shared; ids are capabilities)."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1:3] == ["api", "sessions"]:
        parts[3] = parts[3][:6] + "..."
    return "/".join(parts)[:200]


class _RequireHeader:
    """Refuse state-changing requests without the ``X-Zoo-Studio`` header (cross-site forms cannot send it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            names = {k.decode("latin-1").lower() for k, _ in scope.get("headers", [])}
            if CSRF_HEADER not in names:
                log.warning("%s %s refused: no %s header", scope["method"], _short(scope["path"]), CSRF_HEADER)
                response = _error(
                    403, "Refused: requests that change something must come from the studio page (X-Zoo-Studio)."
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
