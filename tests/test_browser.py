"""The built book in a real browser: headless Chromium driven by Selenium.

Every page of ``_toc.yml`` is served from 127.0.0.1 and must: render its math with
MathJax (no raw TeX left), load every image, log no JavaScript error, load nothing from
another host, keep exercise solutions collapsed until their summary is clicked, and be
found by the book's search under its own title. With every solution open at 1280 px, no
code block, table or the page itself may scroll sideways, the page shows one search
field, and every image has alt text that says what it shows (not its file name). One
more test opens a page with math from the disk with the browser's network switched off
and checks what it draws.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them): without
them the tests are skipped, except under CI (``CI`` set), where they fail. On a failure
the page's screenshot is saved and its path printed.
"""

from __future__ import annotations

import functools
import html
import io
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import toc  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TIMEOUT = 20  # seconds for MathJax or the search to finish


PAGES = toc.toc_files(ROOT)

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium and chromium-driver: see .ci/run")
    pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)",
                allow_module_level=True)  # fmt: skip
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(built_book) -> Iterator[str]:
    """The built book over HTTP on 127.0.0.1 (a free port), as a base URL."""
    assert built_book.returncode == 0, "the book did not build: see test_book.py"
    handler = functools.partial(QuietHandler, directory=str(built_book.html))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@contextmanager
def screenshot_on_failure(driver: webdriver.Chrome, folder: Path, name: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        path = folder / (re.sub(r"\W+", "_", name) + ".png")
        driver.save_screenshot(str(path))
        print(f"screenshot of the failing page: {path}")
        raise


MATHJAX_STATE = """const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) {
    done(document.querySelector('script[src*="mathjax"]') ? 'not started' : 'none');
} else {
    MathJax.startup.promise.then(() => done('ok'), (e) => done('error ' + e));
}"""
SETTLED_WITHOUT_MATH = """return document.readyState === 'complete'
    && !document.querySelector('.math, script[src*="mathjax"]');"""


def wait_for_mathjax(driver: webdriver.Chrome) -> str:
    """'none' on a page without MathJax, else 'ok' once it has typeset the page.

    Polls for up to TIMEOUT seconds: right after a navigation (seen with Chromium 150) the
    document can briefly show neither MathJax nor its script. 'none' is returned only for
    a loaded page that has no math and no MathJax script.
    """
    deadline = time.monotonic() + TIMEOUT
    while True:
        state = driver.execute_async_script(MATHJAX_STATE)
        if state == "ok" or state.startswith("error"):
            return state
        if state == "none" and driver.execute_script(SETTLED_WITHOUT_MATH):
            return state
        if time.monotonic() > deadline:
            url, ready = driver.execute_script("return [location.href, document.readyState]")
            return f"{state} after {TIMEOUT} s ({url}, readyState {ready})"
        time.sleep(0.2)


PAGE_FACTS = """
const article = document.querySelector('article') || document.body;
const prose = article.cloneNode(true);
prose.querySelectorAll('pre, code, script, style, mjx-container, .cell_output, .output')
     .forEach((node) => node.remove());
return {
  text: prose.innerText,
  math: article.querySelectorAll('.math').length,
  typeset: [...article.querySelectorAll('mjx-container')].map(
      (m) => m.getBoundingClientRect().width * m.getBoundingClientRect().height),
  images: [...document.images].map((i) => [i.currentSrc || i.src, i.complete,
                                          i.naturalWidth, i.naturalHeight]),
  resources: performance.getEntriesByType('resource').map((e) => e.name),
  scrolling: [...article.querySelectorAll('div.cell pre')]
      .filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
      .map((pre) => pre.innerText.split('\\n').reduce((a, b) => (b.length > a.length ? b : a))),
};
"""
# After every <details> (exercise solution) is opened: what scrolls sideways, how many
# search fields show, and the alt text of every image.
LAYOUT_FACTS = """
document.querySelectorAll('article details').forEach((d) => { d.open = true; });
const article = document.querySelector('article') || document.body;
const longest = (e) => (e.innerText || '').split('\\n')
    .reduce((a, b) => (b.length > a.length ? b : a), '').slice(0, 100);
const visible = (e) => e.offsetParent !== null && getComputedStyle(e).visibility !== 'hidden';
const column = document.querySelector('.bd-article-container') || article;
return {
  wide: [...article.querySelectorAll('pre, table, .table-wrapper, .pst-scrollable-table-container')]
      .filter((e) => e.scrollWidth > e.clientWidth + 1)
      .map((e) => `${e.tagName} ${e.scrollWidth} > ${e.clientWidth} px: ${longest(e)}`),
  column: [column.scrollWidth, column.clientWidth],
  window: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
  searches: [...document.querySelectorAll(
      '.search-button-field, .search-button, input[type="search"]')].filter(visible).length,
  images: [...document.images].map((i) => [i.getAttribute('src'), i.getAttribute('alt')]),
};
"""
FILE_NAME = re.compile(r"(^|/)[\w.-]+\.(svg|png|jpe?g|gif|webp)$|^[0-9a-f]{32,}", re.I)


def check_layout(browser: webdriver.Chrome) -> None:
    """At 1280 px with all solutions open: nothing scrolls sideways, one search field,
    and every image has alt text that is not a file name."""
    facts = browser.execute_script(LAYOUT_FACTS)
    assert not facts["wide"], "wider than the column at 1280 px: " + "; ".join(facts["wide"])
    assert facts["column"][0] <= facts["column"][1] + 1, f"the main column scrolls: {facts}"
    assert facts["window"][0] <= facts["window"][1] + 1, f"the page scrolls sideways: {facts}"
    assert facts["searches"] == 1, f"{facts['searches']} search fields shown, want one"
    for src, alt in facts["images"]:
        assert alt and alt.strip() and not FILE_NAME.search(alt.strip()), (
            f"image {src}: alt text {alt!r} does not say what it shows"
        )


RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$\s*\\[A-Za-z]+")


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline_without_errors(page, browser, site, screenshots):
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(site + page + ".html")
    with screenshot_on_failure(browser, screenshots, page):
        mathjax = wait_for_mathjax(browser)
        facts = browser.execute_script(PAGE_FACTS)
        assert mathjax in {"ok", "none"}, f"MathJax: {mathjax}"
        if facts["math"]:
            assert mathjax == "ok", "the page has math but MathJax did not run"
            assert len(facts["typeset"]) >= facts["math"], (
                f"{facts['math']} math elements but {len(facts['typeset'])} typeset"
            )
            assert min(facts["typeset"]) > 0, "a typeset formula has no size"
        raw = sorted(set(RAW_TEX.findall(facts["text"])))
        assert not raw, f"raw TeX left in the page text: {raw}"
        broken = [src for src, complete, w, h in facts["images"] if not (complete and w and h)]
        assert not broken, f"images that did not load: {broken}"
        assert not facts["scrolling"], (
            f"code or output wider than the page at 1280 px: {facts['scrolling'][0]!r}"
        )
        remote = [url for url in facts["resources"] if not url.startswith(site)]
        assert not remote, f"loaded from another host: {remote}"
        errors = [entry["message"] for entry in browser.get_log("browser")
                  if entry["level"] == "SEVERE"]  # fmt: skip
        assert not errors, "JavaScript console errors:\n" + "\n".join(errors)
        if page.startswith("chapters/"):
            check_solutions_open_on_click(browser)
        check_layout(browser)


# Instant, not smooth: sphinx-book-theme 1.2 sets `scroll-behavior: smooth`, and a click
# right after a smooth scroll lands where the element was, not where it is.
SCROLL_TO = "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})"


def check_solutions_open_on_click(browser: webdriver.Chrome) -> None:
    """Exercise solutions (<details>) start collapsed; a click on the summary opens one."""
    solutions = browser.find_elements(By.CSS_SELECTOR, "article details")
    assert len(solutions) >= 2, "every chapter has 2-4 exercises with solutions"
    for details in solutions:
        summary = details.find_element(By.TAG_NAME, "summary")
        answer = details.find_element(By.XPATH, "./*[2]")
        assert details.get_property("open") is False, "a solution is shown open"
        assert not answer.is_displayed(), "a collapsed solution is visible"
        browser.execute_script(SCROLL_TO, summary)
        summary.click()
        assert details.get_property("open") is True, "clicking the summary did not open it"
        assert answer.is_displayed(), "an opened solution is not visible"


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("chapters/")])
def test_search_finds_each_chapter_by_its_title(page, browser, site, screenshots, built_book):
    head = (built_book.html / f"{page}.html").read_text(encoding="utf-8")
    title = html.unescape(re.search(r"<title>(.*?)</title>", head, re.S)[1])
    title = title.rsplit(" \N{EM DASH} ", 1)[0].strip()  # "Tensors — Hands-on PyTorch"
    assert title, f"{page} has no title"
    browser.get(f"{site}search.html?q={quote(title)}")
    with screenshot_on_failure(browser, screenshots, page + "_search"):
        WebDriverWait(browser, TIMEOUT).until(  # the summary line appears when done
            lambda d: re.search(r"Search finished|did not match",
                                d.find_element(By.ID, "search-results").text)
        )  # fmt: skip
        results = browser.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")
        pages = [a.get_attribute("href").split("#")[0].split("?")[0] for a in results]
        assert site + page + ".html" in pages, f"{title!r} found {pages[:5]}"


def test_math_renders_from_disk_with_the_network_off(built_book, browser, screenshots):
    from PIL import Image

    page = built_book.html / "chapters" / "part1_by_example" / "01_numpy_two_layer_net.html"
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    try:
        browser.get(page.as_uri())
        with screenshot_on_failure(browser, screenshots, "offline_math"):
            assert wait_for_mathjax(browser) == "ok"
            formula = (  # a displayed equation if there is one, else the first formula
                browser.find_elements(By.CSS_SELECTOR, "article mjx-container[display='true']")
                or browser.find_elements(By.CSS_SELECTOR, "article mjx-container")
            )[0]
            browser.execute_script(SCROLL_TO, formula)
            assert formula.size["width"] > 0 and formula.size["height"] > 0
            fonts = browser.execute_script(
                "return [...document.fonts].filter((f) => f.status === 'loaded')"
                ".map((f) => f.family)"
            )
            assert any(family.startswith("MJXTEX") for family in fonts), fonts
            shot = screenshots / "offline_math_formula.png"
            shot.write_bytes(formula.screenshot_as_png)
            print(f"screenshot of a formula rendered offline: {shot}")
            pixels = Image.open(io.BytesIO(shot.read_bytes())).convert("L")
            dark = sum(pixels.histogram()[:128])  # pixels darker than mid-grey
            assert dark > 20, "the formula's screenshot is blank"
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
