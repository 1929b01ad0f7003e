"""Every heatmap and animation of one transcription (the rule ``draw_figures``): the
matrices of ``matrices.npz`` coloured by their bands, drawn on one reused canvas, and
encoded on a second thread while the next is drawn."""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from folkrnn_lens.figures.canvas import MatrixCanvas
from folkrnn_lens.figures.media import (
    animation_page,
    frame_durations,
    mp4_available,
    write_gif,
    write_mp4,
    write_png,
)
from folkrnn_lens.figures.style import Style, band_colours
from folkrnn_lens.logs import eta
from folkrnn_lens.matrices.plan import Plan
from folkrnn_lens.names import parse_matrix_name

log = logging.getLogger(__name__)

KIND_TITLES = {
    "onehot": "X^T X of the one-hot inputs (1 = the same token)",
    "distance": "L1 distances between softmax outputs",
    "magnitude": "magnitude Gramian, |cos| of the angle between steps",
    "signed": "signed Gramian, cos of the angle between steps",
    "cross": "cross-gate matrix",
}


def _panel_text(spec, tokens: bool = True) -> tuple[str, str, str]:
    """(title, x label, y label) of a matrix; axes read by token, or by bar where
    the tokens are too many to print (animations)."""
    axis = "step: input token" if tokens else "bar (steps grouped by bar number)"
    if spec.kind in ("onehot", "distance"):
        what = "one-hot inputs x" if spec.kind == "onehot" else "softmax outputs p"
        return f"{spec.name}: {KIND_TITLES[spec.kind]}", f"{axis}, of {what}", f"{axis}, of {what}"
    if spec.kind == "cross":
        a, b = spec.quantity, spec.quantity_b
        return (
            f"layer {spec.layer}, {a} × {b}: cross-gate matrix, cos of the angle between {a}_s and {b}_t",
            f"s = {axis}, of {a}",
            f"t = {axis}, of {b}",
        )
    return (
        f"layer {spec.layer}, {spec.quantity}: {KIND_TITLES[spec.kind]}",
        f"{axis}, of {spec.quantity} in layer {spec.layer}",
        f"{axis}, of {spec.quantity} in layer {spec.layer}",
    )


def display_matrix(matrix: np.ndarray, kind: str) -> np.ndarray:
    """What the image shows: a cross matrix U_a^T U_b transposed, so b runs along the
    vertical axis (docs/specification.md); the symmetric ones as they are."""
    return matrix.T if kind == "cross" else matrix


class _Inline:
    """An executor that runs each job at once (one thread, no overlap)."""

    def submit(self, function, *args):
        from concurrent.futures import Future

        future = Future()
        future.set_result(function(*args))
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _steps_text(n: int, window: tuple[int, int] | None) -> str:
    if window is None:
        return f"{n} steps"
    return f"{n} steps (the window of steps {window[0]} to {window[1] - 1})"


class _Pending:
    """Encodings submitted and not yet collected; at most ``limit`` wait at once, so
    a drawing thread faster than its encoder does not pile up pictures in memory."""

    def __init__(self, written: list[Path], limit: int = 3):
        self.written, self.limit, self.futures = written, limit, []

    def add(self, future) -> None:
        self.futures.append(future)
        while len(self.futures) > self.limit:
            self._collect(self.futures.pop(0))

    def finish(self) -> None:
        while self.futures:
            self._collect(self.futures.pop(0))

    def _collect(self, future) -> None:
        result = future.result()
        self.written.extend(result if isinstance(result, list) else [result])


def draw_figures(
    name: str,
    npz_path: str | Path,
    summary_path: str | Path,
    plan: Plan,
    figure_dir: str | Path,
    animation_dir: str | Path,
    style: Style,
    threads: int = 1,
    mp4: bool | None = None,
    pages: bool = True,
    window: tuple[int, int] | None = None,
) -> list[Path]:
    """Every heatmap and animation of one transcription; returns the files written.
    With a ``window`` (the matrices hold steps start..stop-1), the subtitles say so.

    With ``threads`` >= 2, encoding (PNG, GIF, MP4) runs on a second thread while
    the next picture is drawn. ``mp4`` (default: where ffmpeg is found and
    ``style.mp4``) adds MP4s; ``pages`` an HTML page per animation for the report.
    """
    import pandas as pd

    from folkrnn_lens.matrices.compute import describe_row

    mp4 = mp4_available(style) if mp4 is None else mp4
    if mp4 and shutil.which("ffmpeg") is None:
        raise RuntimeError("MP4 animations were asked for, but ffmpeg is not on PATH")
    data = np.load(npz_path)  # lazily: each matrix is read when it is drawn
    tokens, bars = data["tokens"].tolist(), data["bars"]
    summary = {row.matrix: row for row in pd.read_parquet(summary_path).itertuples()}

    def picture(matrix_name: str) -> np.ndarray:
        """Coloured anew each time, not kept: a long tune's pictures do not fit in memory together."""
        kind = plan.spec(matrix_name).kind
        return band_colours(display_matrix(data[matrix_name], kind), kind, style)

    written: list[Path] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) if threads >= 2 else _Inline() as encoder:
        pending = _Pending(written)
        canvas = MatrixCanvas(tokens, bars, style)
        for done, spec in enumerate(plan.matrices, 1):
            title, xlabel, ylabel = _panel_text(spec)
            counts = describe_row(summary[spec.name]) if spec.name in summary else ""
            canvas.show(
                [picture(spec.name)],
                spec.kind,
                f"{name} · {title}",
                f"{_steps_text(len(tokens), window)}; {counts}. "
                "Lines: bar tokens; numbers on top and right: bars.",
                xlabels=[xlabel],
                ylabels=[ylabel],
            )
            for path, pixels in canvas.save(Path(figure_dir) / f"{spec.name}.png", style.formats):
                if pixels is None:
                    written.append(path)
                else:
                    pending.add(encoder.submit(write_png, path, pixels, canvas.dpi, style))
            log.info(
                "%s: heatmap %s (%d of %d)%s",
                name,
                spec.name,
                done,
                len(plan.matrices),
                eta(started, done, len(plan.matrices)),
            )
        del canvas
        heatmaps = time.perf_counter() - started

        canvases: dict[int, MatrixCanvas] = {}
        animations_started = time.perf_counter()
        for done, animation in enumerate(plan.animations, 1):
            panels = len(animation.frames[0])
            if panels not in canvases:
                canvases[panels] = MatrixCanvas(
                    tokens,
                    bars,
                    style,
                    panels=panels,
                    side_inches=style.animation_inches / panels**0.5,
                    dpi=style.animation_dpi,
                    token_labels=len(tokens) <= 48,
                )
            canvas = canvases[panels]
            layers = [plan.spec(frame[-1]).layer for frame in animation.frames]
            frames = []
            for frame, layer in zip(animation.frames, layers):
                specs = [plan.spec(matrix) for matrix in frame]
                texts = [_panel_text(spec, canvas.token_labels) for spec in specs]
                canvas.show(
                    [picture(matrix) for matrix in frame],
                    specs[-1].kind,
                    f"{name} · {animation.title} · layer {layer}",
                    f"layers {' → '.join(map(str, layers))}, pausing on layer {layers[-1]}. "
                    "Lines: bar tokens.",
                    panel_titles=[spec.name if len(specs) > 1 else "" for spec in specs],
                    xlabels=[t[1] for t in texts],
                    ylabels=[t[2] for t in texts],
                )
                frames.append(canvas.pixels())
            durations = frame_durations(len(frames), style.frame_seconds, style.pause_seconds)
            base = Path(animation_dir) / animation.name
            pending.add(
                encoder.submit(_write_animation, frames, base, durations, style, mp4, pages, animation)
            )
            log.info(
                "%s: animation %s (%d of %d)%s",
                name,
                animation.name,
                done,
                len(plan.animations),
                eta(animations_started, done, len(plan.animations)),
            )
        pending.finish()
    log.info(
        "%s: %d heatmaps in %.2f s, %d animations in %.2f s (%d files in %s and %s)",
        name,
        len(plan.matrices),
        heatmaps,
        len(plan.animations),
        time.perf_counter() - started - heatmaps,
        len(written),
        figure_dir,
        animation_dir,
    )
    return written


def _write_animation(
    frames, base: Path, durations, style: Style, mp4: bool, pages: bool, animation
) -> list[Path]:
    written = [write_gif(frames, base.parent / f"{base.name}.gif", durations, style)]
    if mp4:
        written.append(write_mp4(frames, base.parent / f"{base.name}.mp4", durations))
    if pages:
        layers = " → ".join(f"L{parse_matrix_name(frame[-1]).layer}" for frame in animation.frames)
        description = (
            f"{animation.title}: {layers}, {style.frame_seconds:g} s a frame, pausing "
            f"{style.pause_seconds:g} s more on the last."
        )
        written.append(
            animation_page(
                written[0],
                base.parent / f"{base.name}.html",
                animation.title,
                description,
                written[1] if mp4 else None,
            )
        )
    return written
