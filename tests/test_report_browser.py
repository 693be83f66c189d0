"""The report page in a real headless browser (Debian's chromium and chromedriver, driven by selenium): it
renders, its own JavaScript runs without an error, the search box filters a drill-down table, a table's CSV link
holds its rows, and a screenshot
of the page is a real picture. Skipped, with the reason, where no browser is installed."""
from __future__ import annotations

import shutil
import struct

import pytest

from pipeline import report
from tests.test_report import write_output


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no headless browser: install chromium and chromium-driver (Debian: apt-get install -y "
                    "chromium chromium-driver) to check the report page in a browser")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install '.[test]')")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_page_in_a_headless_browser(tmp_path):
    root = write_output(tmp_path / "out")
    html_path = tmp_path / "site" / "report.html"
    report.write_report(str(root), str(html_path))
    browser = _browser()
    try:
        browser.get(html_path.as_uri())
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors  # the page's own script raised nothing, and nothing failed to load
        assert browser.execute_script("return document.documentElement.getAttribute('data-report-ready')") == "1"
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # offline

        # the stance drill-down: open it, search, see the rows filtered
        browser.execute_script("document.getElementById('drill-stance-details').open = true")
        box = browser.find_element("id", "drill-stance-search")
        total = int(browser.execute_script("return document.getElementById('drill-stance').dataset.shown"))
        box.send_keys("azerbaijan against")
        shown = int(browser.execute_script("return document.getElementById('drill-stance').dataset.shown"))
        visible = browser.execute_script(
            "return Array.from(document.querySelectorAll('#drill-stance tbody tr'))"
            ".filter(r => !r.hidden).map(r => r.cells[0].textContent + ' ' + r.cells[1].textContent)")
        assert 0 < shown < total and visible == ["Azerbaijan against"] * shown
        assert browser.find_element("id", "drill-stance-count").text == f"{shown} of {total} rows"
        browser.find_element("css selector", "#drill-stance th[data-col='2']").click()  # sort by score
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

        # a table's CSV link downloads its rows: the browser decodes the data: link as it would save it
        csv_text = browser.execute_async_script(
            "var done = arguments[0], a = document.getElementById('dead-letters-csv');"
            "fetch(a.href).then(r => r.text()).then(done, e => done('failed: ' + e));")
        assert browser.find_element("id", "dead-letters-csv").get_attribute("download") == "dead-letters.csv"
        assert csv_text.lstrip("\ufeff").startswith("stage,input,reason,record id,excerpt\r\nner,in/big.txt,"), csv_text

        shot = browser.get_screenshot_as_png()
        (tmp_path / "report.png").write_bytes(shot)
        width, height = png_size(shot)
        assert width >= 1000 and height >= 600 and len(shot) > 20_000, (width, height, len(shot))
    finally:
        browser.quit()
