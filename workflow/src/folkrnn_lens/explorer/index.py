"""The front page of a run, ``results/index.html``: every transcription, probe, corpus
analysis and comparison with a thumbnail and links to its explorer, figures and
tables; each corpus analysis's tunes as a table to sort and filter. Plain HTML with a
little JavaScript, opened from the file system like the explorers."""

from __future__ import annotations

import logging
import os
from html import escape
from pathlib import Path

import pandas as pd

from folkrnn_lens.corpus_analysis.aggregate import FIGURES as CORPUS_FIGURES
from folkrnn_lens.decoding.corpus import FIGURES as DECODING_FIGURES
from folkrnn_lens.names import gramian_name, parse_matrix_name

log = logging.getLogger(__name__)

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.cards{display:flex;flex-wrap:wrap;gap:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;width:260px;font-size:13px}
.card img{width:100%;height:auto;image-rendering:pixelated;border:1px solid #eee}
.card h3{font-size:14px;margin:4px 0}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}td.num{text-align:right}
input.filter{margin:6px 0;padding:3px;width:20em}
"""

SCRIPT = """
document.querySelectorAll("table.tunes").forEach(table => {
  const body = table.tBodies[0];
  const filter = document.getElementById(table.dataset.filter);
  filter.addEventListener("input", () => {
    const text = filter.value.toLowerCase();
    for (const row of body.rows) row.hidden = !row.textContent.toLowerCase().includes(text);
  });
  table.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => {
    const down = th.dataset.order !== "up";
    th.dataset.order = down ? "up" : "down";
    const key = row => {
      const cell = row.cells[column];
      const number = parseFloat(cell.dataset.value ?? cell.textContent);
      return Number.isNaN(number) ? cell.textContent : number;
    };
    const rows = [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b);
      const numbers = typeof x === "number" && typeof y === "number";
      const order = numbers ? x - y : String(x).localeCompare(String(y));
      return down ? order : -order;
    });
    rows.forEach(row => body.appendChild(row));
  }));
});
"""


def _link(target: Path, page: Path, text: str) -> str:
    return f'<a href="{escape(os.path.relpath(target, page.parent))}">{escape(text)}</a>'


def _card(
    page: Path, title: str, thumbnail: Path | None, links: list[tuple[Path, str]], note: str = ""
) -> str:
    image = ""
    if thumbnail is not None and thumbnail.is_file():
        source = escape(os.path.relpath(thumbnail, page.parent))
        image = f'<img src="{source}" alt="{escape(title)}" loading="lazy">'
    items = " · ".join(_link(target, page, text) for target, text in links if target.exists())
    return (
        f'<div class="card"><h3>{escape(title)}</h3>{image}<div>{items}</div><div>{escape(note)}</div></div>'
    )


def transcription_card(page: Path, folder: Path, name: str) -> str:
    links = [
        (folder / "explorer.html", "explorer"),
        (folder / "figures", "figures"),
        (folder / "animations", "animations"),
        (folder / "summary.html", "summary"),
        (folder / "steps.parquet", "steps"),
        (folder / "features.parquet", "features"),
        (folder / "activations.parquet", "activations"),
        (folder / "resemblance.parquet", "resemblance"),
        (folder / "figures" / "influence.png", "influence"),
        (folder / "figures" / "attribution.png", "attribution"),
        (folder / "figures" / "ablation.png", "ablation"),
        (folder / "interventions", "intervention tables"),
        (folder / "score.svg", "score"),
    ]
    candidates = (folder / "figures" / "L2.h.abs.png", folder / "figures" / "onehot.png")
    thumbnail = next((path for path in candidates if path.is_file()), None)
    return _card(page, name, thumbnail, links)


def corpus_table(
    resemblance: pd.DataFrame, tunes: pd.DataFrame, statistics: list[str], quantity: str, gramian: str
) -> pd.DataFrame:
    """One row per tune: title, origin, steps, bars, and each layer's resemblance of
    ``quantity``'s Gramian to X^T X at shifts 0 and 1, for each statistic."""
    onehot = resemblance[(resemblance["family"] == "onehot") & resemblance["shift"].isin([0, 1])]
    table = tunes.set_index("tune_id")[["title", "origin", "n_steps", "n_bars", "status"]].copy()
    layers = sorted({parse_matrix_name(a).layer for a in onehot["a"]})
    for layer in layers:
        rows = onehot[onehot["a"] == gramian_name(layer, quantity, gramian)]
        for shift in (0, 1):
            at = rows[rows["shift"] == shift].set_index("tune_id")
            for statistic in statistics:
                table[f"L{layer} {statistic} shift {shift}"] = at[statistic]
    return table.reset_index()


def _table_html(table: pd.DataFrame, identifier: str) -> str:
    head = "".join(f"<th>{escape(str(column))}</th>" for column in table.columns)
    rows = []
    for _, row in table.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                shown = "" if pd.isna(value) else f"{value:.3f}"
                cells.append(f'<td class="num" data-value="{"" if pd.isna(value) else value}">{shown}</td>')
            else:
                cells.append(f"<td>{escape(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<input class="filter" id="{identifier}-filter" placeholder="filter tunes">'
        f'<table class="tunes" data-filter="{identifier}-filter"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


FIGURE_TABLES = {
    "saturation": "unit_saturation",
    "attribution": "attribution",
    "selectivity": "selectivity",
    "tuning": "tuning",
    "bar_period": "bar_period_summary",
    "decoding": "decoding",
    "bar_clock": "bar_clock",
}
"""The table behind a corpus figure, where it is not ``aggregate``."""


def build_index(
    out_path: str | Path,
    results: str | Path,
    transcriptions: list[str],
    probes: list[str],
    corpus_analyses: dict[str, dict],
    comparisons: list[tuple[str, str]],
    pairs: dict[str, dict] | None = None,
) -> Path:
    """``results/index.html``. ``corpus_analyses`` maps each analysis to
    ``{"statistics": [...], "quantity": "h", "gramian": "abs"}``, what its table shows;
    ``pairs`` each patched pair to its ``clean`` and ``corrupted`` transcriptions."""
    page, results = Path(out_path), Path(results)
    parts = [f"<h1>folkrnn-lens: {len(transcriptions)} transcriptions</h1>"]
    parts.append("<h2>Transcriptions</h2><div class='cards'>")
    parts += [transcription_card(page, results / "transcriptions" / name, name) for name in transcriptions]
    parts.append("</div>")
    if probes:
        parts.append("<h2>Invariance probes</h2><div class='cards'>")
        for probe in probes:
            folder = results / "probes" / probe
            links = [
                (folder / "explorer.html", "explorer (G' − G)"),
                (folder / "probe.parquet", "table"),
                (folder / "patching.png", "patching"),
                (folder / "tokens.txt", "tokens"),
            ]
            parts.append(_card(page, probe, folder / "difference.png", links))
        parts.append("</div>")
    if pairs:
        parts.append("<h2>Activation patching of pairs</h2><div class='cards'>")
        for pair, roles in pairs.items():
            folder = results / "patching" / pair
            links = [
                (folder / "patching.png", "figure"),
                (folder / "patching_summary.parquet", "summary"),
                (folder / "patching.parquet", "table"),
            ]
            title = f"{pair}: {roles['corrupted']} patched from {roles['clean']}"
            parts.append(_card(page, title, folder / "patching.png", links))
        parts.append("</div>")
    for analysis, shown in corpus_analyses.items():
        folder = results / "corpus_analysis" / analysis
        parts.append(f"<h2>Corpus analysis {escape(analysis)}</h2><div class='cards'>")
        for figure in [*CORPUS_FIGURES, *DECODING_FIGURES]:
            table = FIGURE_TABLES.get(figure, "aggregate")
            links = [(folder / "figures" / f"{figure}.png", "figure"), (folder / f"{table}.parquet", table)]
            parts.append(_card(page, figure, folder / "figures" / f"{figure}.png", links))
        parts.append("</div>")
        tunes = pd.read_parquet(folder / "tunes.parquet")
        resemblance = pd.read_parquet(folder / "resemblance.parquet")
        table = corpus_table(resemblance, tunes, shown["statistics"], shown["quantity"], shown["gramian"])
        caption = (
            f"Each layer's resemblance of the {shown['gramian']} Gramian of {shown['quantity']} to X^T X, "
            "per tune; click a column to sort."
        )
        parts.append(f"<p>{escape(caption)}</p>" + _table_html(table, f"tunes-{analysis}"))
    if comparisons:
        parts.append("<h2>Corpus comparisons</h2><div class='cards'>")
        for first, second in comparisons:
            folder = results / "corpus_comparisons" / f"{first}_vs_{second}"
            links = [(folder / "comparison.png", "figure"), (folder / "comparison.parquet", "table")]
            parts.append(_card(page, f"{first} vs {second}", folder / "comparison.png", links))
        parts.append("</div>")
    parts.append(f"<p>{_link(results.parent / 'report.html', page, 'the Snakemake report')} "
                 "(where made: <code>snakemake --report report.html</code>)</p>")  # fmt: skip
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>folkrnn-lens results</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}<script>{SCRIPT}</script></body></html>\n",
        encoding="utf-8",
    )
    log.info("front page of %d transcriptions: %s", len(transcriptions), page)
    return page


def shown_quantity(settings) -> dict:
    """What a corpus analysis's table shows: its statistics, and h's Gramians (or the
    first compared quantity's where h is not compared)."""
    quantity = "h" if "h" in settings.quantities else settings.quantities[0]
    return {"statistics": list(settings.statistics), "quantity": quantity, "gramian": settings.gramian}
