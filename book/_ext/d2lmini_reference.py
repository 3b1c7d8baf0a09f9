"""Sphinx glue for the d2lmini reference page (book/reference.md).

1. Documents the d2lmini of this checkout: the repository root goes first on
   ``sys.path``, so the book builds in a venv without d2lmini (or torch: autodoc mocks
   it, see ``autodoc_mock_imports`` in ``_config.yml``).
2. Resolves the short names that d2lmini's docstrings and signatures use inside their
   own modules (``:func:`train``` in ``d2lmini.training``, a return type ``Splits``)
   to the entry where the reference documents them: ``d2lmini.train`` for a public
   name, else the one documented ``d2lmini.<module>.<name>``. Anything else stays
   unresolved, so nitpicky mode still reports it.
3. Keeps the docstrings of module-level data (type aliases such as
   ``d2lmini.diagrams.Window``) as written. napoleon, which reads the Google-style
   ``Args:`` sections of functions, would take the text before a first colon
   ("A rectangle of cells: ...") for the alias's type.
4. Drops repeated inline ``<script>`` blocks from each page. sphinx-thebe and
   sphinx-togglebutton add theirs after the HTML builder started, and Sphinx 7.4 then
   lists them twice (the registry's copy and the builder's); the second
   ``const THEBE_JS_URL`` is a JavaScript error in every page (tests/test_browser.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def resolve_d2lmini_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py" or not str(node.get("py:module") or "").startswith(
        "d2lmini"
    ):
        return None
    name = node["reftarget"].lstrip("~.").rsplit(".", 1)[-1]
    domain = env.get_domain("py")
    documented = [
        full
        for full, entry in domain.objects.items()
        if full.startswith("d2lmini.") and full.rsplit(".", 1)[-1] == name and not entry.aliased
    ]
    public = f"d2lmini.{name}"
    target = public if public in documented else documented[0] if len(documented) == 1 else None
    if target is None:
        return None
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, "obj", target, node, contnode
    )


_original_data_docstrings: dict[str, list[str]] = {}


def remember_data_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "data":
        _original_data_docstrings[name] = list(lines)


def restore_data_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "data" and name in _original_data_docstrings:
        lines[:] = _original_data_docstrings.pop(name)


def drop_repeated_scripts(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in context.get("script_files", []):
        attributes = tuple(sorted((k, str(v)) for k, v in script.attributes.items()))
        key = (str(script.filename or ""), attributes)  # None and "" both mean inline
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("missing-reference", resolve_d2lmini_name)
    app.connect("html-page-context", drop_repeated_scripts)
    # napoleon handles autodoc-process-docstring at the default priority, 500.
    app.connect("autodoc-process-docstring", remember_data_docstring, priority=400)
    app.connect("autodoc-process-docstring", restore_data_docstring, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
