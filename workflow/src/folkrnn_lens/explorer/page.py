"""The explorer page of one transcription: one HTML file, its CSS and JavaScript inlined
from ``page/`` (``explorer.html``, ``explorer.css``, ``explorer.js``), reading the data
files of ``explorer.data`` from a folder beside it through ``<script>`` tags, so the
page works from ``file://`` without a network or a server.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

PAGE_DIR = Path(__file__).parent / "page"


class PageError(ValueError):
    """A page that cannot be written as asked; the message says why."""


def page_source(name: str) -> str:
    """The text of one of the page's files (``explorer.html``, ``.css`` or ``.js``)."""
    return (PAGE_DIR / name).read_text(encoding="utf-8")


def explorer_html(data_folder: str = "explorer", title: str = "folkrnn-lens explorer") -> str:
    """The page's HTML, reading its data from ``data_folder`` (relative to the page)."""
    folder = str(data_folder).strip().rstrip("/") or "."
    if Path(folder).is_absolute() or "\\" in folder:
        raise PageError(f"{data_folder!r}: the data folder must be a relative path with '/' separators")
    css, js = page_source("explorer.css"), page_source("explorer.js")
    if "</script" in js.lower() or "</style" in css.lower():
        raise PageError("page/explorer.js or explorer.css holds a closing tag; it cannot be inlined")
    html = page_source("explorer.html")
    # the code last: nothing inside it is taken for a placeholder
    for key, value in (("TITLE", escape(title)), ("DATA_FOLDER", escape(folder, quote=True))):
        html = html.replace("{{" + key + "}}", value)
    return html.replace("{{CSS}}", css).replace("{{JS}}", js)


def write_explorer_page(
    html_path: str | Path, data_folder: str = "explorer", title: str = "folkrnn-lens explorer"
) -> Path:
    """Writes the page to ``html_path``; ``data_folder`` is the folder of ``meta.js``,
    ``score.js`` and ``data/``, relative to the page (``"."``: the page's own folder)."""
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(explorer_html(data_folder, title), encoding="utf-8")
    return html_path
