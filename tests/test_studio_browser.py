"""``zoo studio`` end to end in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, Selenium).

Start the server (uvicorn in a thread, a free loopback port), load the page, upload a photo, move a slider and
check that the preview's pixels change, export, and compare the exported image with ``zoo edit`` given the
exported sidecar. With ``ZOO_STUDIO_SCREENSHOT=path.png`` the browser also saves a screenshot of the page there
(``make studio-screenshot`` writes docs/studio.png).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.errors import ZooError
from zoo.registry import create
from zoo.studio.server import make_server
from zoo.studio.state import Studio, studio_model

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")


def _browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("needs Selenium (pip install -e '.[dev]')")
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(
            "needs a headless Chromium and its driver: apt-get install chromium chromium-driver "
            f"(found browser: {CHROMIUM or 'none'}, chromedriver: {DRIVER or 'none'})"
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1320,800"):
        opts.add_argument(arg)
    opts.add_argument("--force-device-scale-factor=1")
    try:
        return webdriver.Chrome(options=opts, service=Service(executable_path=DRIVER))
    except Exception as exc:  # a browser that is installed but cannot start here
        pytest.skip(f"Chromium is installed but did not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")


class _Server:
    """``zoo studio``'s own server (:func:`zoo.studio.server.make_server`) in a thread, on a free loopback port."""

    def __init__(self, studio: Studio) -> None:
        self.lines: list[str] = []
        self.server = make_server(studio, port=0, announce=self.lines.append)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.lines:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the studio server did not start")
            time.sleep(0.05)
        return self.lines[0].split("open ", 1)[1].split(" ", 1)[0].rstrip("/")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def _source_photo(tmp_path: Path) -> Path:
    """The photo to upload: a low-light DICM photo for the README screenshot when ../shared has it, else a small
    synthetic one."""
    shot = os.environ.get("ZOO_STUDIO_SCREENSHOT")
    dicm = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "lowlight" / "DICM"
    if shot and dicm.is_dir():
        files = sorted(p for p in dicm.iterdir() if p.suffix.lower() in (".jpg", ".png", ".bmp"))
        if files:
            with Image.open(files[min(4, len(files) - 1)]) as im:
                im.convert("RGB").save(tmp_path / "dicm.png")
            return tmp_path / "dicm.png"
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 9.0) * np.cos(yy / 7.0)], axis=-1) * 0.45
    Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def _model():
    """rl_editor with random weights; for the README screenshot, the shipped pretrained editor when present."""
    if os.environ.get("ZOO_STUDIO_SCREENSHOT"):
        try:
            from zoo.inference import load_model
            from zoo.pretrained import DEFAULT

            loaded = load_model(pretrained=DEFAULT, device="cpu")
            return studio_model(loaded.generator, description=loaded.source, recipe=loaded.recipe)
        except (ImportError, TypeError, ZooError):
            pass  # no shipped model: the random one shows the page just as well
    torch.manual_seed(0)
    return studio_model(create("generator", "rl_editor"), description="rl_editor (random weights)")


def _canvas_stats(driver) -> dict:
    return driver.execute_script(
        """
        const c = document.getElementById('preview');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let sum = 0, hash = 0;
        for (let i = 0; i < d.length; i += 4) {
          sum += d[i] + d[i + 1] + d[i + 2];
          hash = (hash * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) % 1000000007;
        }
        return {w: c.width, h: c.height, mean: sum / (3 * d.length / 4), hash: hash,
                renders: parseInt(c.dataset.renders || '0', 10)};
        """
    )


def _wait(driver, condition, what: str, timeout: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except Exception:
        message = driver.execute_script("return document.getElementById('message').textContent")
        raise AssertionError(f"timed out waiting for {what}; page message: {message!r}") from None


def test_studio_in_a_real_browser(tmp_path, one_thread):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from typer.testing import CliRunner

    from zoo.cli.main import app

    driver = _browser()
    studio = Studio(_model())
    k = studio.model.software.K
    src = _source_photo(tmp_path)
    try:
        with _Server(studio) as url:
            driver.get(url + "/")
            _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", "page")
            assert f"proposes the {k} sliders" in driver.find_element(By.ID, "reason").text
            assert len(driver.find_elements(By.CSS_SELECTOR, "#slider-form input[type=range]")) == k

            # a file that is not an image: a sentence on the page, and the server goes on
            (tmp_path / "notes.png").write_text("not an image")
            driver.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.png"))
            _wait(driver, lambda d: d.find_element(By.ID, "message").is_displayed(), "the refusal")
            assert "notes.png is not a readable image" in driver.find_element(By.ID, "message").text
            assert driver.find_element(By.CSS_SELECTOR, "#photo-list li.bad").text == "notes.png: refused"

            driver.find_element(By.ID, "file").send_keys(str(src))
            _wait(driver, lambda d: _canvas_stats(d)["renders"] >= 1, "the proposal's preview")
            first = _canvas_stats(driver)
            assert not driver.find_element(By.ID, "message").is_displayed()  # a good upload clears the message
            assert first["w"] == min(512, Image.open(src).width) and first["mean"] > 0

            # move the exposure slider with the mouse, 0.3 of its travel away from the proposal
            slider = driver.find_element(By.CSS_SELECTOR, '#slider-form input[data-name="exposure"]')
            u0 = float(slider.get_attribute("value"))  # position in [-1, 1]
            up = u0 < 0  # towards neutral first, so the picture stays pleasant
            target = u0 + (0.3 if up else -0.3)
            offset = int(slider.size["width"] * target / 2)  # from the slider's centre
            ActionChains(driver).move_to_element_with_offset(slider, offset, 0).click().perform()
            _wait(driver, lambda d: _canvas_stats(d)["hash"] != first["hash"], "the preview to change")
            _wait(driver, lambda d: d.execute_script("return !S.inflight && !S.dirty"), "the last edit")
            moved = _canvas_stats(driver)
            u1 = float(slider.get_attribute("value"))
            assert abs(u1 - target) < 0.1, (u0, u1, target)
            # more exposure: a brighter preview (less: darker)
            assert (moved["mean"] - first["mean"]) * (1 if up else -1) > 2, (first, moved)

            # before/after toggle shows the upload, then the edit again
            driver.find_element(By.ID, "toggle").click()
            _wait(driver, lambda d: _canvas_stats(d)["renders"] > moved["renders"], "the before view")
            assert _canvas_stats(driver)["hash"] != moved["hash"]
            driver.find_element(By.ID, "toggle").click()
            _wait(driver, lambda d: _canvas_stats(d)["hash"] == moved["hash"], "the after view")

            driver.find_element(By.ID, "export").click()
            _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#exports a[data-kind=xmp]"), "the export")
            links = {
                a.get_attribute("data-kind"): (a.get_attribute("href"), a.get_attribute("download"))
                for a in driver.find_elements(By.CSS_SELECTOR, "#exports a")
            }
            got = tmp_path / "got"
            got.mkdir()
            for _kind, (href, name) in links.items():
                assert href.startswith(url + "/api/sessions/")
                with urllib.request.urlopen(href, timeout=30) as res:
                    (got / name).write_bytes(res.read())
            if os.environ.get("ZOO_STUDIO_SCREENSHOT"):
                shot = Path(os.environ["ZOO_STUDIO_SCREENSHOT"])
                shot.parent.mkdir(parents=True, exist_ok=True)
                assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    assert not studio.folder.exists()  # the private folder went with the server

    image_name, json_name = links["image"][1], links["json"][1]
    res = CliRunner().invoke(
        app, ["edit", str(src), "--sidecar", str(got / json_name), "--out", str(tmp_path / "ref"), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    exported = np.asarray(Image.open(got / image_name))
    assert exported.shape[:2] == np.asarray(Image.open(src)).shape[:2]
    assert np.array_equal(exported, np.asarray(Image.open(tmp_path / "ref" / image_name)))
    assert "crs:Exposure2012" in (got / links["xmp"][1]).read_text()
