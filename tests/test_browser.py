"""End to end in a real browser: ``jdaviz`` served on loopback, Debian's Chromium driven by
Playwright, the user clicks through "Detect Contaminants" and "Detect Sources" on a real
frame (IRAF's M51 test image, ``tests/data``).

Needs ``apt-get install chromium`` and ``pip install playwright solara-assets`` (the test
extra and ``.ci/run`` do both). Without a browser the test is skipped with a one-line
reason, unless ``ASTRODL_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure;
``ASTRODL_CHROMIUM`` names another Chromium binary. The screenshots go to a temporary
directory; with ``ASTRODL_UPDATE_SCREENSHOTS=1`` they replace the ones in ``docs/images``.
"""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from astropy.io import fits

CHROMIUM = os.environ.get("ASTRODL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
DOCS_IMAGES = Path(__file__).parents[1] / "docs" / "images"
PNG = b"\x89PNG\r\n\x1a\n"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_browser():
    """Skip (or, with ``ASTRODL_REQUIRE_BROWSER=1``, fail) when there is no Chromium to drive."""
    if Path(CHROMIUM).exists():
        return
    reason = f"no Chromium at {CHROMIUM}: apt-get install chromium to run the real-browser test"
    if os.environ.get("ASTRODL_REQUIRE_BROWSER") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def served_frame(tmp_path):
    """``jdaviz --layout flexible -fp raw.fits -ff Image`` on a free loopback port, ``raw.fits``
    being the real M51 frame of ``tests/data`` (a galaxy filling a ground-based CCD frame)."""
    _require_browser()
    with fits.open(Path(__file__).parent / "data" / "m51_iraf_dev_pix.fits.gz") as hdul:
        hdul.writeto(tmp_path / "raw.fits")
    port = _free_port()
    env = dict(os.environ, SOLARA_TELEMETRY_MIXPANEL_ENABLE="false")
    jdaviz = Path(sys.executable).with_name("jdaviz")
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([str(jdaviz), "--layout", "flexible", "-fp", "raw.fits", "-ff", "Image", "--port",
                               str(port), "--browser", "true %s"], cwd=tmp_path, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}/"
    try:
        for _ in range(240):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(0.5)
        yield url, tmp_path
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _open_plugin(page, name):
    """Open the data-analysis plugin tray (the toolbar button with that tooltip), then ``name``."""
    if not page.locator(".v-expansion-panel-header", has_text=name).count():
        buttons = page.locator("header button")
        for i in range(buttons.count()):
            buttons.nth(i).hover()
            time.sleep(0.8)
            tip = page.locator(".v-tooltip__content.menuable__content__active")
            if tip.count() and "Data analysis plugins" in tip.first.inner_text():
                buttons.nth(i).click()
                break
    page.locator(".v-expansion-panel-header", has_text=name).first.click()
    return page.locator(".v-expansion-panel--active", has_text=name)


def _run(panel):
    panel.get_by_role("button", name="Run").click()
    status = panel.locator(".astrodl-status")
    status.wait_for(timeout=300_000)
    return status.inner_text()


def _layer_list(page):
    page.locator(".layer-legend .viewer-label").first.click()
    time.sleep(1)  # let the menu finish opening before a screenshot
    return page.locator("[id^=dm-content-]")


def _screenshot(page, out, name):
    path = out / name
    page.screenshot(path=path)
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("ASTRODL_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(exist_ok=True)
        (DOCS_IMAGES / name).write_bytes(path.read_bytes())


def test_detect_contaminants_and_sources_in_chromium(served_frame):
    from playwright.sync_api import sync_playwright

    url, out = served_frame
    label = "raw[PRIMARY,1]"  # jdaviz's label for the primary HDU of raw.fits
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, timeout=120_000)
            page.wait_for_selector("text=Image", timeout=180_000)
            time.sleep(2)

            panel = _open_plugin(page, "Detect Contaminants")
            assert panel.get_by_text("Image to search for contaminants.").is_visible()
            status = _run(panel)  # the default run a new user makes: every class
            assert "added 14 layers" in status, status
            panel.get_by_role("button", name="Export regions").click()
            export = panel.locator(".astrodl-export-status")
            export.wait_for(timeout=60_000)
            assert f"written to raw_PRIMARY_1_contaminants.reg in {out}" in export.inner_text()
            assert panel.locator(".astrodl-status").inner_text() == status  # the run's summary stays
            _screenshot(page, out, "detect_contaminants.png")
            layers = _layer_list(page)
            layers.get_by_text(f"{label} contaminant bitmask", exact=True).wait_for(timeout=60_000)
            assert layers.get_by_text(f"{label} contaminant bitmask", exact=True).is_visible()
            long_names = rf"{re.escape(label)} [A-Z]+: [a-z]"  # subsets named e.g. "... CR: cosmic rays"
            assert re.search(long_names, layers.inner_text()), layers.inner_text()
            _screenshot(page, out, "detect_contaminants_layers.png")
            page.keyboard.press("Escape")
            page.locator(".v-expansion-panel-header", has_text="Detect Contaminants").first.click()  # fold it

            panel = _open_plugin(page, "Detect Sources")
            status = _run(panel)
            assert "sources at S/N >= 5" in status, status
            assert not page.get_by_text("Failed to add").count()  # no error snackbar beside the markers
            layers = _layer_list(page)
            layers.get_by_text(f"{label} sources", exact=True).wait_for(timeout=60_000)
            _screenshot(page, out, "detect_sources.png")
        finally:
            browser.close()


@pytest.mark.parametrize("required", ["", "1"])
def test_a_machine_without_chromium_skips_or_fails_in_one_line(required):
    """README's test command passes on a bare machine; CI, which installs Chromium, insists."""
    env = dict(os.environ, ASTRODL_CHROMIUM="/nonexistent/chromium", ASTRODL_REQUIRE_BROWSER=required)
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", __file__, "-k",
                          "in_chromium"], capture_output=True, text=True, env=env, timeout=300)
    reason = "no Chromium at /nonexistent/chromium: apt-get install chromium to run the real-browser test"
    assert reason in res.stdout, res.stdout[-2000:]
    expected = (1, "1 error") if required else (0, "1 skipped")  # a setup error fails the run
    assert res.returncode == expected[0] and expected[1] in res.stdout, res.stdout[-2000:]
    assert "Traceback" not in res.stdout
