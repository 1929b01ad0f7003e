"""The explorer stage of one transcription (rule build_explorer): its data files
(``data.write_explorer_data``) and the page that shows them (``page``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from folkrnn_lens.explorer.data import write_explorer_data
from folkrnn_lens.figures.style import Style
from folkrnn_lens.matrices.plan import Plan

log = logging.getLogger(__name__)


def build_explorer(
    name: str,
    steps_path: str | Path,
    activations_path: str | Path,
    summary_path: str | Path,
    npz_path: str | Path,
    plan: Plan,
    style: Style,
    html_path: str | Path,
    data_dir: str | Path,
    score_path: str | Path | None = None,
    window: tuple[int, int] | None = None,
) -> Path:
    """``explorer.html`` and its data folder, which must sit beside it; the folder
    holds the page again as ``index.html``, for the Snakemake report."""
    from folkrnn_lens.explorer.page import write_explorer_page

    started = time.perf_counter()
    html_path, data_dir = Path(html_path), Path(data_dir)
    if data_dir.parent.resolve() != html_path.parent.resolve():
        raise ValueError(f"{data_dir}: the explorer's data folder must sit beside {html_path}")
    write_explorer_data(
        name, steps_path, activations_path, summary_path, npz_path, plan, style, data_dir, score_path, window
    )
    title = f"{name}: folkrnn-lens explorer"
    write_explorer_page(html_path, data_folder=data_dir.name, title=title)
    # the same page inside the folder, for the report (which keeps the folder whole)
    write_explorer_page(data_dir / "index.html", data_folder=".", title=title)
    log.info("%s: explorer in %.2f s: %s", name, time.perf_counter() - started, html_path)
    return html_path
