"""Writing pictures: PNG, animated GIF, MP4 (where ``ffmpeg`` is found) and the HTML
page that shows an animation in Snakemake's report.

PNGs and GIFs share one fixed palette (``gif_palette``): the exact band colours
and a fine grey scale, so frames do not flicker and PNGs compress fast. Every
writer leaves out dates, so the same pictures are the same bytes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from folkrnn_lens.figures.style import Style, rgb


def write_png(path: str | Path, pixels: np.ndarray, dpi: int, style: Style | None = None) -> Path:
    """An RGBA canvas as PNG. With a style, as a palette PNG in the GIF palette (exact
    band colours, 200+ greys): a third of the bytes to compress, so about 3x faster."""
    from PIL import Image

    image = to_palette(pixels, style) if style is not None else Image.fromarray(pixels).convert("RGB")
    image.save(path, dpi=(dpi, dpi), compress_level=3)
    return Path(path)


def _palette_image(style: Style):
    from PIL import Image

    palette = Image.new("P", (1, 1))
    palette.putpalette(gif_palette(style))
    return palette


def to_palette(pixels: np.ndarray, style: Style):
    """An RGB(A) picture as a 'P' image in the fixed palette. Pillow's palette lookup
    is approximate (white may become 252), so grey pixels, most of a figure, are
    mapped exactly through a table; the rest (bands, bar lines) by Pillow."""
    from PIL import Image

    picture = np.ascontiguousarray(pixels[..., :3])
    indices = np.asarray(
        Image.fromarray(picture).quantize(palette=_palette_image(style), dither=Image.Dither.NONE)
    )
    entries = np.array(gif_palette(style)).reshape(-1, 3)
    greys = np.flatnonzero((entries[:, 0] == entries[:, 1]) & (entries[:, 1] == entries[:, 2]))
    table = greys[np.abs(entries[greys, 0][None, :] - np.arange(256)[:, None]).argmin(axis=1)]
    grey = (picture[..., 0] == picture[..., 1]) & (picture[..., 1] == picture[..., 2])
    image = Image.fromarray(np.where(grey, table[picture[..., 0]], indices).astype(np.uint8), "P")
    image.putpalette(gif_palette(style))
    return image


def frame_durations(n_frames: int, frame_seconds: float, pause_seconds: float) -> list[float]:
    """Seconds each frame is shown: frame_seconds, and the last one pause_seconds longer."""
    return [frame_seconds] * (n_frames - 1) + [frame_seconds + pause_seconds]


def gif_palette(style: Style) -> list[int]:
    """A fixed 256-colour palette for every GIF frame and PNG: a fine grey scale (the ramp,
    text, white) plus the band colours and the bar lines blended over greys, so
    frames neither flicker nor band into coarse grey steps."""
    colours = [rgb(style.colours[key]) for key in ("similar", "dissimilar", "opposite")]
    line = rgb(style.colours["bar_lines"])
    blends = [0.2 * g + 0.8 * line for g in np.linspace(0, 1, 12)]
    blends += [0.2 * c + 0.8 * line for c in colours]
    extra = [*colours, *blends]
    greys = np.linspace(0, 1, 256 - len(extra))
    entries = [np.array([g, g, g]) for g in greys] + extra
    return [int(round(v * 255)) for colour in entries for v in colour]


def write_gif(frames: list[np.ndarray], path: str | Path, durations: list[float], style: Style) -> Path:

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [to_palette(frame, style) for frame in frames]
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=[round(d * 1000) for d in durations],
        loop=0,
        optimize=False,
    )
    return path


def write_mp4(frames: list[np.ndarray], path: str | Path, durations: list[float]) -> Path:
    """H.264 by ffmpeg, sizes padded to even. The video runs at one frame per shortest
    duration (1 fps by default), each frame repeated to fill its own, so only a few
    frames are encoded."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not on PATH: cannot write MP4")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]  # frames are RGBA
    unit = min(durations)
    repeats = [max(1, round(d / unit)) for d in durations]
    rate = f"{1 / unit:.6g}"
    pad = "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white"
    command = [
        ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
        "-r", rate, "-i", "-", "-vf", pad, "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage",
        "-pix_fmt", "yuv420p", "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-map_metadata", "-1", str(path),
    ]  # fmt: skip
    data = b"".join(np.ascontiguousarray(f[..., :3]).tobytes() * k for f, k in zip(frames, repeats))
    subprocess.run(command, input=data, check=True, capture_output=True)
    return path


def mp4_available(style: Style) -> bool:
    return bool(style.mp4) and shutil.which("ffmpeg") is not None


def animation_page(gif: Path, page: Path, title: str, description: str, mp4: Path | None = None) -> Path:
    """A small HTML page showing a GIF inline (Snakemake's report shows HTML and still
    images in place, but offers a GIF only as a download)."""
    import base64
    from html import escape

    data = base64.b64encode(gif.read_bytes()).decode()
    video = f"<p>Also as MP4: <code>{escape(mp4.name)}</code>.</p>" if mp4 else ""
    page.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;margin:0.5em'><p>{escape(description)}</p>"
        f"<img src='data:image/gif;base64,{data}' alt='{escape(title)}' style='max-width:100%'>{video}"
        "</body></html>\n",
        encoding="utf-8",
    )
    return page
