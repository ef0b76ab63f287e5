"""``zoo studio``'s server through Starlette's test client: propose, edit, export (= ``zoo edit``), errors, safety."""

from __future__ import annotations

import io
import json
import logging
import stat
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("httpx", reason="starlette's TestClient needs httpx (pip install -e '.[dev]')")
from starlette.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from zoo.errors import DataError, InputError  # noqa: E402
from zoo.registry import create  # noqa: E402
from zoo.studio.app import create_app  # noqa: E402
from zoo.studio.state import Studio, studio_model  # noqa: E402

H = {"X-Zoo-Studio": "1"}
BASE = "http://127.0.0.1"


def _photo(path: Path, h: int = 48, w: int = 64, seed: int = 0) -> Path:
    """A smooth, photo-like colour image (so JPEG round trips and edits stay meaningful)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 5.0)], axis=-1) * 0.6
    arr = np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1)
    Image.fromarray((arr * 255).astype(np.uint8)).save(path)
    return path


def _png_bytes(h: int = 48, w: int = 64, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def rl_studio(one_thread):
    torch.manual_seed(0)
    gen = create("generator", "rl_editor")
    studio = Studio(studio_model(gen, description="test rl_editor"))
    yield studio, gen
    studio.close()  # also when a test failed before the app's shutdown removed it


@pytest.fixture
def client(rl_studio):
    studio, _ = rl_studio
    with TestClient(create_app(studio), base_url=BASE) as c:
        yield c


def _session(c: TestClient) -> str:
    r = c.post("/api/sessions", headers=H)
    assert r.status_code == 200
    return r.json()["session"]


def _upload(c: TestClient, sid: str, path: Path | None = None, data: bytes | None = None, name: str | None = None):
    body = path.read_bytes() if path is not None else data
    return c.post(
        f"/api/sessions/{sid}/photos", content=body, headers={**H, "X-Filename": name or (path.name if path else "x")}
    )


def _jpeg(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"), dtype=np.float64)


def _zoo_edit(src: Path, sidecar: Path, out: Path, software: str | None = None) -> Path:
    """``zoo edit SRC --sidecar SIDECAR`` (the sidecar names its software unless ``software`` is given)."""
    from zoo.cli.main import app

    extra = ["--software", software] if software else []
    res = CliRunner().invoke(app, ["edit", str(src), "--sidecar", str(sidecar), *extra, "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


# ------------------------------------------------------------------------------------------- propose, edit


def test_info_lists_the_softwares_sliders(client):
    info = client.get("/api/info").json()
    assert info["mode"] == "sliders" and info["software"] == "lightroom_basic"
    assert [s["name"] for s in info["sliders"]][:4] == ["dehaze", "clarity", "contrast", "exposure"]
    assert all(s["low"] == -1.0 and s["high"] == 1.0 and s["neutral"] == 0.0 for s in info["sliders"])


def test_upload_applies_the_models_argmax_proposal(client, rl_studio, tmp_path):
    from zoo.inference import read_image

    _, gen = rl_studio
    src = _photo(tmp_path / "a.png")
    sid = _session(client)
    r = _upload(client, sid, src)
    assert r.status_code == 200, r.text
    photo = r.json()
    assert (photo["width"], photo["height"]) == (64, 48)
    with torch.inference_mode():
        want = gen.eval()(read_image(src)[None])["params"][0]  # what zoo enhance applies
    got = torch.tensor([photo["proposal"][n] for n in gen.software.names])
    assert torch.allclose(got, want, atol=1e-6)
    assert photo["params"] == photo["proposal"]
    # the first edit with the proposal shows the model's result on the preview
    r = client.post(f"/api/sessions/{sid}/photos/{photo['id']}/edit", json={"params": photo["proposal"]}, headers=H)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with torch.inference_mode():
        ref = gen.software.apply(read_image(src)[None], want.view(1, -1))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(_jpeg(r.content) - ref).mean() < 4.0  # JPEG at quality 90


def test_slider_moves_change_the_preview_and_are_remembered(client, tmp_path):
    sid = _session(client)
    pid = _upload(client, sid, _photo(tmp_path / "a.png")).json()["id"]
    url = f"/api/sessions/{sid}/photos/{pid}"
    dark = _jpeg(client.post(url + "/edit", json={"params": {"exposure": -0.5}}, headers=H).content)
    r = client.post(url + "/edit", json={"params": {"exposure": 0.5}}, headers=H)
    bright = _jpeg(r.content)
    assert float(r.headers["X-Edit-Ms"]) > 0
    assert bright.mean() > dark.mean() + 20
    state = client.get(url).json()
    assert state["params"]["exposure"] == pytest.approx(0.5) and state["params"]["contrast"] == 0.0
    assert state["proposal"] != state["params"]
    before = _jpeg(client.get(url + "/before").content)
    assert before.shape == bright.shape == (48, 64, 3)


def test_preview_of_a_large_photo_is_downscaled_and_export_is_full_size(rl_studio, tmp_path):
    studio, _ = rl_studio
    studio.preview_side = 64
    src = _photo(tmp_path / "big.png", h=150, w=200)
    with TestClient(create_app(studio), base_url=BASE) as c:
        sid = _session(c)
        photo = _upload(c, sid, src).json()
        assert photo["preview"] == [48, 64]
        url = f"/api/sessions/{sid}/photos/{photo['id']}"
        assert _jpeg(c.post(url + "/edit", json={"params": {}}, headers=H).content).shape == (48, 64, 3)
        assert c.post(url + "/export", json={"params": {}}, headers=H).status_code == 200
        assert Image.open(io.BytesIO(c.get(url + "/files/image").content)).size == (200, 150)


# ------------------------------------------------------------------------------------------- export = zoo edit


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_export_is_what_zoo_edit_makes_from_the_exported_sidecar(client, tmp_path, fmt):
    src = _photo(tmp_path / f"photo.{fmt}", h=40, w=56)
    sid = _session(client)
    pid = _upload(client, sid, src).json()["id"]
    url = f"/api/sessions/{sid}/photos/{pid}"
    values = {"exposure": 1 / 3, "contrast": -0.2, "clarity": 0.45, "dehaze": 0.1234567, "temp": 0.3, "shadows": 0.7}
    r = client.post(url + "/export", json={"params": values}, headers=H)
    assert r.status_code == 200, r.text
    files = r.json()["files"]
    assert files == {"image": f"photo.{fmt}", "json": "photo.json", "xmp": "photo.xmp"}
    got = tmp_path / "got"
    got.mkdir()
    for kind, name in files.items():
        res = client.get(url + f"/files/{kind}")
        assert res.status_code == 200
        assert f'filename="{name}"' in res.headers["content-disposition"]
        (got / name).write_bytes(res.content)
    side = json.loads((got / "photo.json").read_text())
    assert side["software"] == "lightroom_basic" and side["params"]["exposure"] == pytest.approx(1 / 3, abs=1e-6)
    assert side["source"] == f"photo.{fmt}"
    ref = _zoo_edit(src, got / "photo.json", tmp_path / "ref")
    a = np.asarray(Image.open(got / f"photo.{fmt}"))
    b = np.asarray(Image.open(ref / f"photo.{fmt}"))
    assert a.shape == (40, 56, 3) and np.array_equal(a, b)
    assert (got / f"photo.{fmt}").read_bytes() == (ref / f"photo.{fmt}").read_bytes()
    xmp = (got / "photo.xmp").read_text()
    assert 'crs:Contrast2012="-20"' in xmp and 'crs:Shadows2012="+70"' in xmp and "crs:Exposure2012=" in xmp
    # the edit is real: the export differs from the input
    assert np.abs(a.astype(float) - np.asarray(Image.open(src), dtype=float)).mean() > 5


CHAIN = {"name": "editor_chain", "operators": ["clarity", "exposure", "saturation"]}


@pytest.mark.parametrize("software", ["exposure_filters", CHAIN], ids=["exposure_filters", "editor_chain"])
def test_plain_editor_starts_neutral_and_exports_like_zoo_edit(one_thread, tmp_path, software):
    studio = Studio(studio_model(None, software=software))
    src = _photo(tmp_path / "p.png", h=32, w=40)
    name_of = software if isinstance(software, str) else software["name"]
    with TestClient(create_app(studio), base_url=BASE) as c:
        info = c.get("/api/info").json()
        assert info["mode"] == "editor" and info["software"] == name_of and "No model loaded" in info["reason"]
        if software == CHAIN:
            assert [s["name"] for s in info["sliders"]] == CHAIN["operators"]
        sid = _session(c)
        photo = _upload(c, sid, src).json()
        sw = create("software", software)
        assert photo["proposal"] == pytest.approx(sw.to_dict(sw.neutral(1)[0]))
        name = sw.names[1]
        spec = sw.specs[1]
        value = spec.neutral + 0.6 * (spec.high - spec.neutral)
        url = f"/api/sessions/{sid}/photos/{photo['id']}"
        r = c.post(url + "/export", json={"params": {name: value}}, headers=H)
        assert r.status_code == 200, r.text
        body = r.json()
        if software == "exposure_filters":  # no Lightroom names: no XMP, and the page says why
            assert body["files"]["xmp"] is None and "No XMP" in body["note"]
        (tmp_path / "p.json").write_bytes(c.get(url + "/files/json").content)
        got = np.asarray(Image.open(io.BytesIO(c.get(url + "/files/image").content)))
    ref = _zoo_edit(src, tmp_path / "p.json", tmp_path / "ref")  # the sidecar says which software (and chain)
    assert np.array_equal(got, np.asarray(Image.open(ref / "p.png")))
    assert not np.array_equal(got, np.asarray(Image.open(src)))


def test_any_slider_generator_and_software_proposes_and_exports(one_thread, tmp_path):
    """edit_regressor (continuous sliders, SliderGenerator.propose) over an editor_chain of three operators."""
    from zoo.inference import read_image

    torch.manual_seed(0)
    gen = create("generator", {"name": "edit_regressor", "software": CHAIN}).eval()
    with torch.no_grad():  # a non-trivial proposal (the head starts at zero: the identity edit)
        for prm in gen.parameters():
            prm.add_(torch.randn_like(prm) * 0.05)
    src = _photo(tmp_path / "r.png", h=36, w=44)
    with torch.inference_mode():
        want = gen.propose(read_image(src)[None])[0]
    assert want.abs().max() > 1e-3
    studio = Studio(studio_model(gen, description="edit_regressor test"))
    with TestClient(create_app(studio), base_url=BASE) as c:
        assert c.get("/api/info").json()["sliders"][0]["name"] == "clarity"
        sid = _session(c)
        photo = _upload(c, sid, src).json()
        got = torch.tensor([photo["proposal"][n] for n in CHAIN["operators"]])
        assert torch.allclose(got, want, atol=1e-6)
        url = f"/api/sessions/{sid}/photos/{photo['id']}"
        assert c.post(url + "/export", json={}, headers=H).status_code == 200  # the proposal as it stands
        (tmp_path / "r.json").write_bytes(c.get(url + "/files/json").content)
        exported = np.asarray(Image.open(io.BytesIO(c.get(url + "/files/image").content)))
    side = json.loads((tmp_path / "r.json").read_text())
    assert side["software_block"] == CHAIN and side["params"]["exposure"] == pytest.approx(float(want[1]), abs=1e-6)
    ref = _zoo_edit(src, tmp_path / "r.json", tmp_path / "ref")
    assert np.array_equal(exported, np.asarray(Image.open(ref / "r.png")))


def test_sidecars_name_their_chain_so_zoo_edit_rebuilds_it(tmp_path):
    from zoo.editing.software import software_for_sidecar

    chain = create("software", CHAIN)
    path = chain.save_sidecar(tmp_path / "s.json", chain.neutral(1)[0])
    assert software_for_sidecar(path).names == CHAIN["operators"]
    with pytest.raises(DataError, match="written for the software"):
        create("software", "editor_chain").load_sidecar(path)  # the default chain has other sliders
    plain = create("software", "lightroom_basic").save_sidecar(tmp_path / "l.json", torch.zeros(12))
    assert "software_block" not in json.loads(plain.read_text()) and software_for_sidecar(plain).K == 12


def test_generator_without_sliders_shows_before_after_with_the_reason(one_thread, tmp_path):
    torch.manual_seed(0)
    gen = create("generator", {"name": "enlightengan_unet", "base_channels": 4})
    studio = Studio(studio_model(gen, description="tiny unet", recipe={"model": {"generator": "enlightengan_unet"}}))
    with TestClient(create_app(studio), base_url=BASE) as c:
        info = c.get("/api/info").json()
        assert info["mode"] == "before_after" and info["sliders"] == []
        assert "enlightengan_unet is not a slider generator" in info["reason"]
        sid = _session(c)
        pid = _upload(c, sid, _photo(tmp_path / "u.png", h=32, w=32)).json()["id"]
        url = f"/api/sessions/{sid}/photos/{pid}"
        after = _jpeg(c.get(url + "/after").content)
        before = _jpeg(c.get(url + "/before").content)
        assert after.shape == before.shape == (32, 32, 3) and np.abs(after - before).mean() > 1
        r = c.post(url + "/edit", json={"params": {"exposure": 0.1}}, headers=H)
        assert r.status_code == 400 and "not a slider generator" in r.json()["error"]
        r = c.post(url + "/export", json={}, headers=H)
        assert r.status_code == 400 and "nothing to export" in r.json()["error"]


def test_software_option_conflicts_with_a_slider_model(one_thread):
    gen = create("generator", "rl_editor")
    with pytest.raises(InputError, match="drives its own software 'lightroom_basic'"):
        studio_model(gen, software="exposure_filters")


def test_cli_model_options_pick_the_mode(one_thread):
    import inspect

    from zoo.cli.studio import load_studio_model
    from zoo.errors import ZooError
    from zoo.inference import load_model

    model = load_studio_model({}, [], "editor_chain")
    assert model.mode == "editor" and model.software.names == ["exposure", "contrast", "saturation"]
    if "pretrained" not in inspect.signature(load_model).parameters:
        with pytest.raises(DataError, match="--pretrained: this version of enhance-zoo cannot load models that way"):
            load_studio_model({"pretrained": "anything"}, [], None)
        return
    with pytest.raises(ZooError, match="no_such_model_xyz"):
        load_studio_model({"pretrained": "no_such_model_xyz"}, [], None)
    from zoo.pretrained import list_pretrained

    shipped = [p.name for p in list_pretrained()]
    if shipped:  # a shipped slider model proposes its own sliders
        model = load_studio_model({"pretrained": shipped[0]}, [], None)
        assert model.mode in ("sliders", "before_after") and model.description == f"pretrained {shipped[0]}"
    if "generator" in inspect.signature(load_model).parameters:  # a training-free baseline: before/after only
        model = load_studio_model({"generator": "histogram_equalization"}, [], None)
        assert model.mode == "before_after" and "histogram_equalization is not a slider generator" in model.reason


def test_cli_errors_are_sentences():
    from zoo.cli.main import app
    from zoo.errors import UnknownComponentError

    res = CliRunner().invoke(app, ["studio", "--software", "lightroom_basc"])
    assert isinstance(res.exception, UnknownComponentError) and "Did you mean 'lightroom_basic'" in str(res.exception)
    res = CliRunner().invoke(app, ["studio", "--help"])
    assert res.exit_code == 0 and "--pretrained" in res.output and "--host" in res.output


def test_server_binds_loopback_prints_its_address_and_cleans_up(one_thread):
    """zoo studio's own server (uvicorn) on a free port: the announced address answers, the folder goes at exit."""
    import threading
    import time
    import urllib.request

    from zoo.studio.server import make_server

    studio = Studio(studio_model(None))
    lines: list[str] = []
    server = make_server(studio, port=0, announce=lines.append)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lines and lines[0].startswith("zoo studio: open http://127.0.0.1:"), lines
        url = lines[0].split("open ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url, timeout=10) as res:
            assert res.status == 200 and b"zoo studio" in res.read()
        listening = [sock.getsockname()[0] for s in server.servers for sock in s.sockets]
        assert listening == ["127.0.0.1"]
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive() and not studio.folder.exists()


# ------------------------------------------------------------------------------------------- bad input


def test_bad_uploads_get_a_sentence_and_the_server_keeps_running(client, tmp_path, caplog):
    sid = _session(client)
    with caplog.at_level(logging.WARNING, logger="zoo.studio"):
        r = _upload(client, sid, data=b"this is not an image", name="notes.png")
        assert r.status_code == 400 and "notes.png is not a readable image" in r.json()["error"]
        r = _upload(client, sid, data=b"", name="empty.png")
        assert r.status_code == 400 and "empty.png is empty" in r.json()["error"]
        r = _upload(client, sid, data=_png_bytes()[:60], name="cut.png")
        assert r.status_code == 400 and "cut.png" in r.json()["error"]
    assert "notes.png is not a readable image" in caplog.text
    assert "/tmp" not in r.json()["error"]  # the private folder's paths are not shown
    assert _upload(client, sid, _photo(tmp_path / "ok.png")).status_code == 200  # still serving
    uploads = [p for p in client.app.state.studio.session(sid).folder.iterdir() if p.name.startswith("u-")]
    assert len(uploads) == 1  # refused files are not kept


def test_too_many_pixels_and_too_many_bytes_are_refused(one_thread, tmp_path, caplog):
    studio = Studio(studio_model(None), max_pixels=1000, max_upload_bytes=20_000)
    with TestClient(create_app(studio), base_url=BASE) as c:
        sid = _session(c)
        with caplog.at_level(logging.WARNING, logger="zoo.studio"):
            r = _upload(c, sid, data=_png_bytes(40, 40), name="bomb.png")  # 1600 px > 1000
        assert r.status_code == 400 and "over the limit of 0.0 MP" in r.json()["error"]
        assert "bomb.png has 40 x 40" in r.json()["error"] and "bomb.png" in caplog.text
        r = _upload(c, sid, data=_png_bytes(100, 100), name="huge.png")  # 30 kB > 20 kB
        assert r.status_code == 413 and "larger than the upload limit" in r.json()["error"]
        assert _upload(c, sid, data=_png_bytes(20, 20), name="small.png").status_code == 200


def test_bad_slider_values_get_a_sentence(client, tmp_path):
    sid = _session(client)
    url = f"/api/sessions/{sid}/photos/" + _upload(client, sid, _photo(tmp_path / "a.png")).json()["id"]
    r = client.post(url + "/edit", json={"params": {"exposur": 0.2}}, headers=H)
    assert r.status_code == 400 and "Did you mean 'exposure'" in r.json()["error"]
    r = client.post(url + "/edit", json={"params": {"exposure": 3}}, headers=H)
    assert r.status_code == 400 and "outside its range [-1, 1]" in r.json()["error"]
    r = client.post(url + "/edit", json={"params": {"exposure": "lots"}}, headers=H)
    assert r.status_code == 400 and "needs a number" in r.json()["error"]
    r = client.post(url + "/edit", content=b"{not json", headers={**H, "Content-Type": "application/json"})
    assert r.status_code == 400 and "must be JSON" in r.json()["error"]
    r = client.post(url + "/edit", json={"params": [1, 2]}, headers=H)
    assert r.status_code == 400 and "name: value pairs" in r.json()["error"]


def test_unknown_ids_and_missing_exports_are_404(client, tmp_path):
    sid = _session(client)
    pid = _upload(client, sid, _photo(tmp_path / "a.png")).json()["id"]
    assert client.get(f"/api/sessions/nope/photos/{pid}/before").status_code == 404
    r = client.get(f"/api/sessions/{sid}/photos/nope/before")
    assert r.status_code == 404 and "Unknown photo" in r.json()["error"]
    r = client.get(f"/api/sessions/{sid}/photos/{pid}/files/image")
    assert r.status_code == 404 and "export it first" in r.json()["error"]
    assert client.get(f"/api/sessions/{sid}/photos/{pid}/files/zip").status_code == 404


# ------------------------------------------------------------------------------------------- safety


def _raw_get(app, raw_path: str) -> tuple[int, bytes]:
    """GET with the path exactly as given (no client-side normalisation), decoded as an ASGI server does."""
    import anyio

    sent: list[dict] = []
    requested: list[bool] = []

    async def receive():
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()  # the client stays connected until the response is complete

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8765),
    }
    anyio.run(app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def test_path_traversal_reaches_no_file(client, tmp_path):
    sid = _session(client)
    pid = _upload(client, sid, _photo(tmp_path / "a.png")).json()["id"]
    client.post(f"/api/sessions/{sid}/photos/{pid}/export", json={"params": {}}, headers=H)
    app = client.app
    base = f"/api/sessions/{sid}/photos/{pid}"
    tries = [
        "/../pyproject.toml",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/..%5c..%5cpyproject.toml",
        "/static/../../pyproject.toml",
        "/app.js/../../../pyproject.toml",
        "/app.js%2f..%2f..%2fstate.py",
        "/index.html",
        "/state.py",
        "/static/app.js",
        "/zoo/studio/static/app.js",
        "/%252e%252e/%252e%252e/etc/passwd",
        "//etc/passwd",
        f"{base}/files/..%2f..%2f..%2fpyproject.toml",
        f"{base}/files/%2e%2e",
        f"{base}/files/image/../../../../../etc/passwd",
        f"{base}/../../../../etc/passwd",
        f"/api/sessions/{sid}/photos/..%2f{pid}/before",
        f"/api/sessions/..%2f{sid}/photos/{pid}/before",
        f"/api/sessions/{sid}/photos/%2e%2e/files/json",
    ]
    for raw in tries:
        status, body = _raw_get(app, raw)
        assert status in (400, 404), (raw, status)
        assert b"root:" not in body and b"[project]" not in body and b"import" not in body, raw
    # a file name from the browser never becomes a path: only its last component, kept inside the private folder
    r = _upload(client, sid, _photo(tmp_path / "b.png"), name="..%2F..%2F..%2F..%2Ftmp%2Fevil.png")
    evil = r.json()
    assert evil["name"] == "evil.png"
    client.post(f"/api/sessions/{sid}/photos/{evil['id']}/export", json={"params": {}}, headers=H)
    studio = client.app.state.studio
    exported = studio.export_file(sid, evil["id"], "image")
    assert exported.name == "evil.png" and studio.folder in exported.resolve().parents
    # the real things are still served
    assert _raw_get(app, "/")[0] == 200 and b"zoo studio" in _raw_get(app, "/")[1]
    assert _raw_get(app, f"{base}/files/json")[0] == 200


def test_requests_need_the_page_header_and_a_local_host(client):
    r = client.post("/api/sessions")
    assert r.status_code == 403 and "must come from the studio page" in r.json()["error"]
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400  # DNS rebinding
    r = client.get("/")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_page_works_offline(client):
    """The page is the package's three files and loads nothing from elsewhere (no CDN, no build step)."""
    import re

    html = client.get("/").text
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == ["data:,", "/style.css", "/app.js"]
    for asset in ("/", "/app.js", "/style.css"):
        text = client.get(asset).text
        assert not re.search(r"https?://|//cdn|@import|import\s*\(", text), asset
    assert "default-src 'none'" in client.get("/app.js").headers["content-security-policy"]


def test_two_sessions_do_not_mix_photos_or_sliders(client, tmp_path):
    src = _photo(tmp_path / "same.png")
    a, b = _session(client), _session(client)
    assert a != b
    pa = _upload(client, a, src).json()["id"]
    pb = _upload(client, b, src).json()["id"]
    assert pa != pb
    client.post(f"/api/sessions/{a}/photos/{pa}/edit", json={"params": {"exposure": 0.8}}, headers=H)
    client.post(f"/api/sessions/{b}/photos/{pb}/edit", json={"params": {"exposure": -0.4}}, headers=H)
    assert client.get(f"/api/sessions/{a}/photos/{pa}").json()["params"]["exposure"] == pytest.approx(0.8)
    assert client.get(f"/api/sessions/{b}/photos/{pb}").json()["params"]["exposure"] == pytest.approx(-0.4)
    # one tab cannot reach the other's photo
    assert client.get(f"/api/sessions/{b}/photos/{pa}/before").status_code == 404
    assert client.post(f"/api/sessions/{b}/photos/{pa}/edit", json={}, headers=H).status_code == 404
    # exports (stored sliders) stay apart, even with the same file name
    for sid, pid, want in ((a, pa, 0.8), (b, pb, -0.4)):
        assert client.post(f"/api/sessions/{sid}/photos/{pid}/export", json={}, headers=H).status_code == 200
        side = client.get(f"/api/sessions/{sid}/photos/{pid}/files/json").json()
        assert side["params"]["exposure"] == pytest.approx(want)
    ia = _jpeg(client.get(f"/api/sessions/{a}/photos/{pa}/files/image").content)
    ib = _jpeg(client.get(f"/api/sessions/{b}/photos/{pb}/files/image").content)
    assert ia.mean() > ib.mean() + 20


def test_private_folder_is_0700_and_removed_when_the_server_stops(rl_studio, tmp_path):
    studio, _ = rl_studio
    with TestClient(create_app(studio), base_url=BASE) as c:
        sid = _session(c)
        assert _upload(c, sid, _photo(tmp_path / "a.png")).status_code == 200
        folder = studio.folder
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in folder.iterdir())
        assert any(folder.rglob("u-*"))
    assert not folder.exists()
