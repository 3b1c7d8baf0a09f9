"""Numbered figures and alt text for the images that notebooks draw.

A code cell whose image output is a figure of the book carries, in its metadata,
``mystnb: {figure: {caption: ..., name: fig-...}, image: {alt: ...}}``: myst-nb then
wraps the output in a numbered figure with that caption (``{numref}`fig-...``` refers
to it) and gives the ``<img>`` that alt text.

1. myst-nb applies a cell's figure options to *every* display output of the cell. A
   training cell also displays its progress bar (text), which would become a second
   figure with the same name (a duplicate-target warning, and the caption twice). Here
   only outputs that hold an image become the figure; the others render as before.
2. An image without alt text would get its file name (a content hash) as alt. Those
   get the figure's caption, else the text matplotlib wrote into the SVG (title, axis
   labels, legend), so the alt text says what the figure shows. A cell's own
   ``mystnb.image.alt`` always wins; tests/test_browser.py checks no alt is a file name.
"""

from __future__ import annotations

import html
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from docutils import nodes

SVG_TEXT = re.compile(r"<!-- (.*?) -->")
NOT_WORDS = re.compile(r"[\s\d.,−+\-$^{}\\×%]*|.*mathdefault.*|Created with matplotlib.*")


def patch_myst_nb_figures() -> None:
    """Wrap only image outputs in the cell's figure (see 1. above)."""
    import myst_nb.sphinx_ as sphinx_renderer

    original = getattr(sphinx_renderer.create_figure_context, "__wrapped_original__", None)
    original = original or sphinx_renderer.create_figure_context

    @contextmanager
    def figure_for_images_only(self: Any, figure_options: Any, line: int) -> Iterator[None]:
        if not isinstance(figure_options, dict):
            yield
            return
        holder = nodes.Element()
        with self.current_node_context(holder):
            yield
        has_image = any(str(node.get("mime_type", "")).startswith("image/")
                        for node in holder.findall(nodes.container))  # fmt: skip
        if has_image:
            with original(self, figure_options, line):
                self.current_node.extend(holder.children)
        else:
            self.current_node.extend(holder.children)

    figure_for_images_only.__wrapped_original__ = original  # type: ignore[attr-defined]
    sphinx_renderer.create_figure_context = figure_for_images_only


def svg_words(path: Path) -> list[str]:
    """The texts matplotlib drew (it writes each as an SVG comment), without numbers."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    words = [html.unescape(w).strip() for w in SVG_TEXT.findall(text)]
    return list(dict.fromkeys(w for w in words if w and not NOT_WORDS.fullmatch(w)))


def add_alt_text(app: Any, doctree: nodes.document) -> None:
    """doctree-read: alt text for images that have none (see 2. above)."""
    for image in doctree.findall(nodes.image):
        if image.get("alt"):
            continue
        figure = image.parent
        while figure is not None and not isinstance(figure, nodes.figure):
            figure = figure.parent
        captions = list(figure.findall(nodes.caption)) if figure is not None else []
        if captions:
            image["alt"] = captions[0].astext()
            continue
        uri = Path(image.get("uri", ""))
        path = uri if uri.is_absolute() else Path(app.srcdir) / uri
        words = svg_words(path) if path.suffix == ".svg" else []
        if words:
            image["alt"] = "Figure showing: " + "; ".join(words[:12])


def setup(app: Any) -> dict[str, Any]:
    patch_myst_nb_figures()
    app.connect("doctree-read", add_alt_text)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
