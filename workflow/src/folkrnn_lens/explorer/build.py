"""The explorer stage of one transcription (rule build_explorer): its data files
(``data.write_explorer_data``) and the page that shows them (``page``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from folkrnn_lens.explorer.data import Reference, write_explorer_data
from folkrnn_lens.figures.style import Style
from folkrnn_lens.matrices.plan import Plan
from folkrnn_lens.names import array_name

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
    """``explorer.html`` and its data folder, which must sit beside it."""
    from folkrnn_lens.explorer.page import write_explorer_page

    started = time.perf_counter()
    html_path, data_dir = Path(html_path), Path(data_dir)
    if data_dir.parent.resolve() != html_path.parent.resolve():
        raise ValueError(f"{data_dir}: the explorer's data folder must sit beside {html_path}")
    write_explorer_data(
        name, steps_path, activations_path, summary_path, npz_path, plan, style, data_dir, score_path, window
    )
    write_explorer_page(html_path, data_folder=data_dir.name, title=f"{name}: folkrnn-lens explorer")
    log.info("%s: explorer in %.2f s: %s", name, time.perf_counter() - started, html_path)
    return html_path


COMPARISON = ("relative_frobenius", "max_abs_difference", "cka", "pearson")
"""The numbers of probe.parquet a probe's page shows beside G' - G."""


def build_probe_explorer(
    probe: str,
    of: str,
    steps_path: str | Path,
    activations_path: str | Path,
    original_path: str | Path,
    table_path: str | Path,
    gramian: str,
    style: Style,
    html_path: str | Path,
    data_dir: str | Path,
) -> Path:
    """The explorer of a probed tune (its two reads, ``probed/`` and ``original/``, and
    ``probe.parquet``): its own matrices, and G' - G of each layer and quantity
    against the original, computed in the page."""
    from folkrnn_lens.explorer.page import write_explorer_page
    from folkrnn_lens.matrices.plan import plan_analysis
    from folkrnn_lens.resemblance.probes import read_probe_metadata

    started = time.perf_counter()
    html_path, data_dir = Path(html_path), Path(data_dir)
    table = pd.read_parquet(table_path)
    layers = sorted(int(layer) for layer in table["layer"].unique())
    quantities = list(dict.fromkeys(table["quantity"]))
    analysis = {"gramians": [gramian], "cross_pairs": []}
    plan = plan_analysis(analysis, recorded_layers=layers, recorded_quantities=quantities)
    comparisons = {
        array_name(row.layer, row.quantity): {key: float(getattr(row, key)) for key in COMPARISON}
        for row in table.itertuples()
    }
    changed = table["first_changed_step"].dropna().astype(int).tolist()[:1]
    reference = Reference(
        of=of,
        description=read_probe_metadata(table_path)["description"],
        activations_path=Path(original_path),
        gramian=gramian,
        changed=changed,
        comparisons=comparisons,
    )
    write_explorer_data(
        probe, steps_path, activations_path, None, None, plan, style, data_dir, reference=reference
    )
    write_explorer_page(html_path, data_folder=data_dir.name, title=f"probe {probe}: folkrnn-lens explorer")
    log.info("probe %s: explorer in %.2f s: %s", probe, time.perf_counter() - started, html_path)
    return html_path
