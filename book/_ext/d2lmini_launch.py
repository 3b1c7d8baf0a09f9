"""Launch buttons (Colab, Binder) only where they can work.

``repository.url`` in ``_config.yml`` is the one place that says where the book is
published (jupyter-book passes it on as the theme option ``repository_url``).

- Empty, the default of an unreleased copy: the book shows no launch buttons and no
  repository or issue buttons, rather than buttons that lead nowhere.
- Set: the book shows them, except the Colab button on the pages listed in
  ``d2lmini_repository_pages``. Their notebooks read files of the repository beyond
  d2lmini (``bench/``), which a Colab runtime lacks; Binder clones the whole repository,
  so its button stays.

tests/test_book.py checks both rules on the built pages and on these functions.
"""

from __future__ import annotations

from typing import Any

LAUNCH_GROUP = "launch-buttons"  # sphinx-book-theme's label of the launch dropdown


def configure_buttons(app: Any, config: Any) -> None:
    """config-inited: turn the header buttons on or off by ``repository_url``."""
    options = config.html_theme_options
    published = bool(str(options.get("repository_url") or "").strip())
    if not published:
        options.pop("launch_buttons", None)
        options.pop("repository_url", None)
    options["use_repository_button"] = published
    options["use_issues_button"] = published


def drop_colab_where_files_are_missing(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """html-page-context, after the theme's: no Colab button on repository pages."""
    if pagename not in app.config.d2lmini_repository_pages:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == LAUNCH_GROUP:
            group["buttons"] = [b for b in group["buttons"] if b.get("text") != "Colab"]
    context["header_buttons"] = [
        group for group in context.get("header_buttons", [])
        if group.get("label") != LAUNCH_GROUP or group["buttons"]
    ]  # fmt: skip


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("d2lmini_repository_pages", [], "html")
    app.connect("config-inited", configure_buttons)
    # sphinx-book-theme adds its launch buttons at priority 501.
    app.connect("html-page-context", drop_colab_where_files_are_missing, priority=510)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
