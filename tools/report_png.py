"""Screenshot a newsbeam report page in headless chromium (selenium): `make report-png` makes docs/report.png.

    python tools/report_png.py REPORT.html OUT.png [--width 1280] [--height 1900] [--open drill-stance]

The page is opened from the file (it needs no server); the drill-down tables named by --open are unfolded first
and the page's own console is checked for errors, so a broken script fails the make target instead of
shipping a picture of it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 1900, open_ids: tuple[str, ...] = ()) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit("report_png: needs chromium and chromedriver (Debian: apt-get install -y chromium "
                         "chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        browser.get(html.resolve().as_uri())
        for drill in open_ids:
            browser.execute_script(f"document.getElementById({drill + '-details'!r}).open = true")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            raise SystemExit(f"report_png: the page logged errors: {errors}")
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(browser.get_screenshot_as_png())
    finally:
        browser.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1900)
    parser.add_argument("--open", nargs="*", default=["drill-articles"], help="drill-down tables to unfold")
    args = parser.parse_args(argv)
    screenshot(args.html, args.png, args.width, args.height, tuple(args.open))
    print(f"report_png: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
