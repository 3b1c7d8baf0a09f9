"""The HTML book: it builds warning-free, is complete, and works offline.

The build (``built_book`` in conftest.py) runs once per session, as ``make book`` does.
The browser checks of the built pages are in test_browser.py.
"""

from __future__ import annotations

import html
import importlib
import inspect
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin, urlsplit

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import run_times  # noqa: E402

# (tag, attribute) pairs that make a browser fetch something as the page loads.
LOADING_ATTRIBUTES = {
    ("script", "src"), ("img", "src"), ("img", "srcset"), ("source", "src"),
    ("source", "srcset"), ("iframe", "src"), ("embed", "src"), ("object", "data"),
    ("video", "src"), ("video", "poster"), ("audio", "src"), ("track", "src"),
    ("input", "src"), ("image", "href"), ("use", "href"),
}  # fmt: skip
# <link rel=...> values that fetch the target (a plain <a href> is only a link).
LOADING_RELS = {
    "stylesheet", "icon", "shortcut", "preload", "modulepreload", "prefetch", "manifest",
    "apple-touch-icon", "mask-icon", "preconnect", "dns-prefetch",
}  # fmt: skip
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


def is_remote(url: str) -> bool:
    """True for an address on another host: http(s)://, protocol-relative //host."""
    url = url.strip()
    return url.startswith("//") or urlsplit(url).scheme in {"http", "https", "ftp", "ws", "wss"}


class LoadCollector(HTMLParser):
    """Collects every address a page loads: scripts, styles, images, fonts in <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.stylesheets: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        for name, value in values.items():
            if (tag, name) in LOADING_ATTRIBUTES or (tag, name) == ("use", "xlink:href"):
                self.loads += [part.split()[0] for part in value.split(",") if part.strip()]
        if tag == "link" and LOADING_RELS & set(values.get("rel", "").lower().split()):
            self.loads.append(values.get("href", ""))
            if "stylesheet" in values.get("rel", "").lower():
                self.stylesheets.append(values.get("href", ""))
        if "style" in values:
            self.loads += [a or b for a, b in CSS_URL.findall(values["style"])]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.loads += [a or b for a, b in CSS_URL.findall(data)]


def remote_loads(html_dir: Path) -> dict[str, list[str]]:
    """Remote addresses loaded by each built page, and by the CSS files they load."""
    found: dict[str, list[str]] = {}
    css_seen: set[Path] = set()
    for page in sorted(html_dir.rglob("*.html")):
        collector = LoadCollector()
        collector.feed(page.read_text(encoding="utf-8"))
        where = str(page.relative_to(html_dir))
        found[where] = [url for url in collector.loads if is_remote(url)]
        todo = [page.parent / urlsplit(href).path for href in collector.stylesheets
                if href and not is_remote(href)]  # fmt: skip
        while todo:  # follow @import chains
            css = todo.pop().resolve()
            if css in css_seen or not css.is_file():
                continue
            css_seen.add(css)
            for a, b in CSS_URL.findall(css.read_text(encoding="utf-8", errors="replace")):
                url = a or b
                if is_remote(url):
                    found.setdefault(str(css.relative_to(html_dir.resolve())), []).append(url)
                elif url.endswith(".css"):
                    todo.append(Path(urljoin(str(css), url)))
    return {where: urls for where, urls in found.items() if urls}


def test_book_builds_without_warnings(built_book):
    assert built_book.returncode == 0 and not built_book.warnings, (
        "\n".join(built_book.warnings) or built_book.output[-3000:]
    )


def test_every_notebook_has_a_page(built_book):
    for notebook in sorted((ROOT / "chapters").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in notebook.parts:
            continue
        page = built_book.html / notebook.relative_to(ROOT).with_suffix(".html")
        assert page.is_file(), f"no HTML page for {notebook.relative_to(ROOT)}"


def test_no_page_loads_anything_from_another_host(built_book):
    pages = list(built_book.html.rglob("*.html"))
    assert len(pages) > 20
    assert (built_book.html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    offenders = remote_loads(built_book.html)
    assert not offenders, "remote loads (the book must work offline):\n" + "\n".join(
        f"{where}: {', '.join(sorted(set(urls)))}" for where, urls in offenders.items()
    )


def test_remote_load_scan_catches_cdn_scripts_styles_and_fonts(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><head><script src="https://cdn.jsdelivr.net/npm/mathjax@3/x.js"></script>'
        '<link rel="stylesheet" href="local.css"><link rel="canonical" href="https://x.org">'
        '</head><body><a href="https://github.com/">a link is fine</a>'
        '<img src="//example.org/i.png"><img src="_images/ok.png"></body></html>'
    )
    (tmp_path / "local.css").write_text('@import "more.css"; .a { color: red }')
    (tmp_path / "more.css").write_text("@font-face { src: url(https://fonts.gstatic.com/f.woff2) }")
    assert remote_loads(tmp_path) == {
        "a.html": ["https://cdn.jsdelivr.net/npm/mathjax@3/x.js", "//example.org/i.png"],
        "more.css": ["https://fonts.gstatic.com/f.woff2"],
    }


def public_names() -> list[tuple[str, object]]:
    """(documented name, object) for d2lmini.__all__ and its importable submodules."""
    import d2lmini

    names = [(f"d2lmini.{name}", getattr(d2lmini, name)) for name in d2lmini.__all__]
    for module in ("diagrams",):  # used as `from d2lmini import diagrams`
        if (ROOT / "d2lmini" / f"{module}.py").is_file():
            sub = importlib.import_module(f"d2lmini.{module}")
            names += [(f"d2lmini.{module}.{name}", getattr(sub, name)) for name in sub.__all__]
    return names


def test_reference_documents_every_public_name_with_its_signature(built_book):
    page = (built_book.html / "book" / "reference.html").read_text(encoding="utf-8")
    names = public_names()
    assert len(names) >= 40
    for name, obj in names:
        match = re.search(rf'<dt class="sig[^"]*" id="{re.escape(name)}">(.*?)</dt>', page, re.S)
        assert match, f"{name} is not documented in book/reference.md"
        signature = html.unescape(re.sub(r"<[^>]+>", "", match[1]))
        if inspect.isfunction(obj):
            for parameter in inspect.signature(obj).parameters:
                assert parameter in signature, f"{name}: {parameter} not shown"
            if "return" in obj.__annotations__:
                assert "→" in signature, f"{name}: no return type shown"


def test_run_times_table_is_up_to_date():
    assert run_times.OUTPUT.read_text(encoding="utf-8") == run_times.render(), (
        "book/_generated/run_times.md is out of date: run `python tools/run_times.py`"
    )


def test_run_times_table_shows_stored_runs_and_dashes(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n"
        "      - file: ch/a\n      - file: ch/b\n      - file: ch/page\n"
    )
    (tmp_path / "ch").mkdir()
    (tmp_path / "ch" / "page.md").write_text("# A Markdown page: not a notebook\n")
    timed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("word " * 1001)])
    timed.metadata["d2lmini"] = {
        "profile": "laptop",
        "run_seconds": 75.4,
        "device": "cpu",
        "peak_memory_mib": 1536,
    }
    nbformat.write(timed, tmp_path / "ch" / "a.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "ch" / "b.ipynb")
    text = run_times.render(tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| {doc}")]
    assert rows == [
        "| {doc}`/ch/a` | 10 min | laptop | 1 min 15 s | 1.5 GiB | cpu |",
        "| {doc}`/ch/b` | 5 min | — | — | — | — |",
    ]
    assert "{doc}`/ch/a`, peaked at 1.5 GiB" in text


def test_binder_requirements_install_this_checkout():
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
               "--no-build-isolation", "--no-deps", "-r", "binder/requirements.txt"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Would install d2lmini" in result.stdout


sys.path.insert(0, str(ROOT / "book" / "_ext"))
import bootstrap_cell  # noqa: E402
import d2lmini_launch  # noqa: E402

LAUNCH_MARKS = ("dropdown-launch-buttons", "colab.research.google.com", "mybinder.org",
                "btn-source-repository-button")  # fmt: skip


def test_no_page_shows_a_launch_button_without_a_repository_url(built_book):
    if bootstrap_cell.repository_url():
        pytest.skip("repository.url is set: the release build shows launch buttons")
    pages = sorted(built_book.html.rglob("*.html"))
    shown = {str(page.relative_to(built_book.html)): mark for page in pages
             for mark in LAUNCH_MARKS if mark in page.read_text(encoding="utf-8")}  # fmt: skip
    assert not shown, f"buttons that lead nowhere (repository.url is empty): {shown}"


def fake_config(url: str) -> SimpleNamespace:
    launch = {"colab_url": "https://colab.research.google.com", "binderhub_url": "b"}
    return SimpleNamespace(html_theme_options={"repository_url": url, "launch_buttons": launch})


def test_launch_buttons_follow_the_repository_url():
    unpublished = fake_config("")
    d2lmini_launch.configure_buttons(None, unpublished)
    assert "launch_buttons" not in unpublished.html_theme_options
    assert unpublished.html_theme_options["use_repository_button"] is False
    published = fake_config("https://github.com/o/r")
    d2lmini_launch.configure_buttons(None, published)
    assert published.html_theme_options["launch_buttons"]["colab_url"]
    assert published.html_theme_options["use_repository_button"] is True


def test_pages_that_read_the_repository_get_no_colab_button():
    app = SimpleNamespace(config=SimpleNamespace(d2lmini_repository_pages=["ch/needs_bench"]))
    for page, expected in (("ch/needs_bench", ["Binder"]), ("ch/other", ["Binder", "Colab"])):
        group = {"label": "launch-buttons",
                 "buttons": [{"text": "Binder"}, {"text": "Colab"}]}  # fmt: skip
        context = {"header_buttons": [group, {"label": "download-buttons", "buttons": []}]}
        d2lmini_launch.drop_colab_where_files_are_missing(app, page, "page", context, None)
        assert [b["text"] for b in context["header_buttons"][0]["buttons"]] == expected


READS_REPOSITORY = re.compile(r"""["']bench["']|\bbench/""")  # code that opens bench/


def test_exactly_the_notebooks_that_read_bench_are_marked_as_repository_pages():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    marked = set(config["sphinx"]["config"]["d2lmini_repository_pages"])
    reading = set()
    for notebook in sorted((ROOT / "chapters").rglob("*.ipynb")):
        nb = nbformat.read(notebook, as_version=4)
        if any(READS_REPOSITORY.search(c.source) for c in nb.cells if c.cell_type == "code"):
            reading.add(str(notebook.relative_to(ROOT).with_suffix("")))
    assert reading, "the comparison chapter reads bench/: the pattern no longer sees it"
    assert marked == reading, (
        "_config.yml d2lmini_repository_pages must list the notebooks whose code reads "
        f"bench/ (no Colab button there): listed {sorted(marked)}, reading {sorted(reading)}"
    )


BIB = ROOT / "book" / "references.bib"
# The paper each Part IV chapter builds on (the comparison: the later networks it names).
PART4_PAPERS = {
    "01_alexnet": "krizhevsky2012imagenet", "02_vgg": "simonyan2015very",
    "03_nin": "lin2014network", "04_googlenet": "szegedy2015going",
    "05_batch_norm": "ioffe2015batch", "06_resnet": "he2016deep",
    "07_densenet": "huang2017densely", "08_comparison": "radosavovic2020designing",
}  # fmt: skip
# The papers the book names (issue 20): AlexNet ... RegNet, one-cycle, label smoothing,
# PyTorch's DDP and FSDP.
REQUIRED_PAPERS = set(PART4_PAPERS.values()) | {
    "xie2017aggregated", "smith2019super", "szegedy2016rethinking", "li2020pytorch",
    "zhao2023pytorch",
}  # fmt: skip
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", BIB.read_text(encoding="utf-8"), re.M))


def cited_keys(text: str) -> set[str]:
    text = re.sub(r"``.+?``", "", text)  # a role shown as code (``{cite:p}`key` ``) is no citation
    return {key.strip() for keys in CITE.findall(text) for key in keys.split(",")}


def markdown_of(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_bibliography_holds_the_papers_and_every_citation_resolves():
    keys = bib_keys()
    assert REQUIRED_PAPERS <= keys, f"missing from references.bib: {REQUIRED_PAPERS - keys}"
    sources = [*(ROOT / "chapters").rglob("*.ipynb"), *(ROOT / "book").glob("*.md")]
    for source in sources:
        text = markdown_of(source) if source.suffix == ".ipynb" else source.read_text("utf-8")
        unknown = cited_keys(text) - keys
        assert not unknown, f"{source.relative_to(ROOT)} cites unknown keys {unknown}"


def test_each_part_iv_chapter_cites_its_paper():
    for stem, key in PART4_PAPERS.items():
        notebook = ROOT / "chapters" / "part4_modern_cnn" / f"{stem}.ipynb"
        assert key in cited_keys(markdown_of(notebook)), f"{stem} does not cite {key}"


def test_chapters_sections_and_figures_are_numbered(built_book):
    page = (built_book.html / "chapters" / "part3_cnn" / "07_lenet.html").read_text("utf-8")
    numbers = re.findall(r'<span class="section-number">([\d.]+) </span>', page)
    assert numbers and re.fullmatch(r"\d+\.", numbers[0]), "chapters are not numbered"
    assert any(re.fullmatch(r"\d+\.\d+\.", n) for n in numbers), "sections not numbered"
    assert re.search(r'<span class="caption-number">Fig\. \d+\.\d+ </span>', page), (
        "figures are not numbered"
    )
    bibliography = (built_book.html / "book" / "bibliography.html").read_text("utf-8")
    shown = set(re.findall(r'<div class="citation" id="([^"]+)"', bibliography))
    assert len(shown) == len(bib_keys()), "the bibliography page lists every entry"
