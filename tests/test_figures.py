"""Heatmaps and animations: exact bands, and pictures that are there and not blank."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageSequence

from folkrnn_lens.figures import media
from folkrnn_lens.figures import style as style_module
from folkrnn_lens.figures.canvas import MatrixCanvas, token_fontsize
from folkrnn_lens.figures.draw import draw_figures
from folkrnn_lens.figures.media import frame_durations, mp4_available, write_mp4
from folkrnn_lens.figures.style import Style, band_colours, rgb
from folkrnn_lens.matrices.compute import save_npz, summary_table, write_summary
from folkrnn_lens.matrices.maths import (
    band_counts,
    cross_gramian,
    magnitude_gramian,
    onehot_gramian,
    signed_gramian,
    softmax_l1_distances,
)
from folkrnn_lens.matrices.plan import plan_analysis

STYLE = Style.from_config({})  # the schema's defaults
SANGUINE = tuple(int(round(v * 255)) for v in rgb(STYLE.colours["similar"]))
POWDER_BLUE = tuple(int(round(v * 255)) for v in rgb(STYLE.colours["dissimilar"]))
VIOLET = tuple(int(round(v * 255)) for v in rgb(STYLE.colours["opposite"]))


def colour_at(picture, s, t):
    return tuple(int(v) for v in picture[s, t])


def n_colours(image):
    pixels = np.asarray(image)[..., :3].astype(np.uint32)
    return len(np.unique(pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2]))


def is_grey(colour):
    return colour[0] == colour[1] == colour[2]


def test_distance_bands_are_closed_and_grey_is_darker_when_closer():
    d = np.array([[0.0, 0.02, 0.021, 1.0, 1.979, 1.98, 2.0]])
    picture = band_colours(d, "distance", STYLE)
    assert colour_at(picture, 0, 0) == colour_at(picture, 0, 1) == SANGUINE
    assert colour_at(picture, 0, 5) == colour_at(picture, 0, 6) == POWDER_BLUE
    greys = [picture[0, k, 0] for k in (2, 3, 4)]
    assert all(is_grey(colour_at(picture, 0, k)) for k in (2, 3, 4))
    assert greys[0] < greys[1] < greys[2]  # darker = closer


def test_cosine_bands_and_darker_for_smaller_angles():
    g = np.array([[1.0, 0.98, 0.97, 0.5, 0.03, 0.02, 0.0]])
    picture = band_colours(g, "magnitude", STYLE)
    assert colour_at(picture, 0, 0) == colour_at(picture, 0, 1) == SANGUINE
    assert colour_at(picture, 0, 5) == colour_at(picture, 0, 6) == POWDER_BLUE
    assert picture[0, 2, 0] < picture[0, 3, 0] < picture[0, 4, 0]
    signed = band_colours(np.array([[1.0, 0.0, -0.5, -0.98, 0.5]]), "signed", STYLE)
    assert colour_at(signed, 0, 0) == SANGUINE and colour_at(signed, 0, 1) == POWDER_BLUE
    assert colour_at(signed, 0, 3) == VIOLET
    assert signed[0, 4, 0] < signed[0, 2, 0]  # cos 0.5 darker than cos -0.5
    onehot = band_colours(np.eye(2), "onehot", STYLE)
    assert colour_at(onehot, 0, 0) == SANGUINE and colour_at(onehot, 0, 1) == POWDER_BLUE


def test_band_colours_agree_with_band_counts():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 2, (30, 30))
    d = (d + d.T) / 2
    d[0, 1] = d[1, 0] = 0.02
    d[2, 3] = d[3, 2] = 1.98
    picture = band_colours(d, "distance", STYLE)
    upper = np.triu_indices(30, k=1)
    counts = band_counts(d, "distance", 0.02, 1.98)
    assert np.sum(np.all(picture[upper] == SANGUINE, axis=-1)) == counts.n_low
    assert np.sum(np.all(picture[upper] == POWDER_BLUE, axis=-1)) == counts.n_high


def test_token_labels_shrink_with_more_steps_and_thin_out_when_too_many():
    small, stride_small = token_fontsize(40, 6.0)
    large, stride_large = token_fontsize(300, 24.0)
    assert small > large >= 3.0 and stride_small == stride_large == 1
    assert token_fontsize(2000, 24.0)[1] > 1


def test_colours_and_thresholds_come_from_config():
    style = Style.from_config(
        {
            "colours": {"similar": "#ff0000"},
            "bands": {"distance": {"low": 0.5, "high": 1.5}},
            "figures": {"dpi": 50, "formats": ["png", "pdf"]},
            "animation": {"pause_seconds": 4},
        }
    )
    assert style.colours["similar"] == "#ff0000" and style.colours["dissimilar"] == "#b0e0e6"
    assert style.thresholds("distance") == (0.5, 1.5) and style.thresholds("signed") == (0.02, 0.98)
    assert (style.dpi, style.formats, style.pause_seconds) == (50, ("png", "pdf"), 4)
    picture = band_colours(np.array([[0.4]]), "distance", style)
    assert tuple(picture[0, 0]) == (255, 0, 0)


# ---- drawing one transcription ---------------------------------------------------------


def make_analysis(folder, tokens, plan, seed=0):
    """matrices.npz and summary.parquet of a made-up tune, as the matrices rule writes them."""
    rng = np.random.default_rng(seed)
    n = len(tokens)
    arrays = {}
    for spec in plan.matrices:
        if spec.kind == "onehot":
            arrays[spec.name] = onehot_gramian(tokens)
        elif spec.kind == "distance":
            p = rng.dirichlet(np.full(5, 0.3), size=n)
            arrays[spec.name] = softmax_l1_distances(p)
        elif spec.kind == "cross":
            arrays[spec.name] = cross_gramian(rng.random((n, 6)), rng.normal(size=(n, 6)))
        else:
            q = np.cumsum(rng.normal(size=(n, 6)), axis=0)
            arrays[spec.name] = (magnitude_gramian if spec.kind == "magnitude" else signed_gramian)(q)
    from folkrnn_lens.tokens.format import bar_indices

    arrays["tokens"] = np.asarray(tokens)
    arrays["bars"] = np.asarray(bar_indices(tokens), np.int32)
    save_npz(folder / "matrices.npz", arrays)
    write_summary(summary_table("tiny", arrays, plan), folder / "summary.parquet")


TOKENS = [
    "<s>",
    "M:6/8",
    "K:Cmaj",
    "G",
    "|:",
    "c",
    "2",
    "A",
    "B",
    "c",
    "d",
    "|",
    "e",
    "2",
    "c",
    "d",
    "2",
    "B",
    ":|",
    "|2",
    "c",
    "3",
    "c",
    "2",
    "|",
]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figures")
    options = {"layers": [1, 2], "quantities": ["o", "h"], "cross_pairs": [["h", "o"]]}
    plan = plan_analysis(options, [1, 2], ["o", "h"])
    make_analysis(folder, TOKENS, plan)
    style = Style.from_config({"animation": {"frame_seconds": 0.5, "pause_seconds": 1.5}})
    written = draw_figures(
        "tiny",
        folder / "matrices.npz",
        folder / "summary.parquet",
        plan,
        folder / "figures",
        folder / "animations",
        style,
        threads=2,
        mp4=False,
    )
    return folder, plan, written


def test_every_matrix_gets_a_figure_that_is_not_blank(drawn):
    folder, plan, written = drawn
    for name in plan.names:
        path = folder / "figures" / f"{name}.png"
        assert path in written
        image = np.asarray(Image.open(path).convert("RGB"))
        height, width = image.shape[:2]
        assert 500 < width < 2000 and 500 < height < 2000, (name, image.shape)
        assert n_colours(image) > 20, name  # text, greys and bands, not a blank canvas
        assert (image < 128).mean() > 0.005, name  # some dark ink: labels, frame
    heatmap = np.asarray(Image.open(folder / "figures" / "onehot.png").convert("RGB"))
    assert np.all(heatmap == SANGUINE, axis=-1).sum() > 100  # the same-token cells
    assert np.all(heatmap == POWDER_BLUE, axis=-1).sum() > 1000


def test_the_picture_lands_exactly_on_its_axes(tmp_path):
    """Pasted pixels: each step is a k x k block of its band colour, with step 0 at top left."""
    tokens = ["<s>", "a", "b", "a"]
    matrix = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]], float)
    canvas = MatrixCanvas(tokens, np.zeros(4, int), STYLE, side_inches=2.0, dpi=50)
    canvas.show([band_colours(matrix, "onehot", STYLE)], "onehot", "t")
    pixels = canvas.pixels()[..., :3]
    left, top, side = canvas.boxes[0]
    k = canvas.scale
    assert side == 4 * k and k == 25
    for s in range(4):
        for t in range(4):
            block = pixels[top + s * k + 3 : top + (s + 1) * k - 3, left + t * k + 3 : left + (t + 1) * k - 3]
            expected = SANGUINE if matrix[s, t] else POWDER_BLUE
            assert np.all(block == expected), (s, t)


def test_animations_cycle_the_layers_and_pause_on_the_last(drawn):
    folder, plan, written = drawn
    names = {a.name for a in plan.animations}
    assert names == {"o.abs", "h.abs", "onehot_vs_h", "h_x_o"}
    for name in names:
        gif = Image.open(folder / "animations" / f"{name}.gif")
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
        assert durations == [500, 2000]  # layers 1 and 2, pausing on 2
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"))
        assert first.shape[0] > 300 and n_colours(first) > 20
        page = (folder / "animations" / f"{name}.html").read_text()
        assert "data:image/gif;base64," in page
    side_by_side = Image.open(folder / "animations" / "onehot_vs_h.gif")
    assert side_by_side.size[0] > side_by_side.size[1]


def test_frames_differ_between_layers(drawn):
    folder, _, _ = drawn
    gif = Image.open(folder / "animations" / "h.abs.gif")
    frames = [np.asarray(frame.convert("RGB")).copy() for frame in ImageSequence.Iterator(gif)]
    assert not np.array_equal(frames[0], frames[1])


def test_pdf_on_request(tmp_path):
    canvas = MatrixCanvas(TOKENS, np.zeros(len(TOKENS), int), STYLE)
    canvas.show([band_colours(onehot_gramian(TOKENS), "onehot", STYLE)], "onehot", "title")
    [(pdf, pixels)] = canvas.save(tmp_path / "onehot.png", ("pdf",))
    assert pixels is None and pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    [(pdf_again, _)] = canvas.save(tmp_path / "again.png", ("pdf",))
    assert pdf.read_bytes() == pdf_again.read_bytes()  # no creation date


def test_drawing_is_the_same_bytes_every_time(tmp_path):
    options = {"quantities": ["h"], "layers": [1, 2], "softmax": False}
    plan = plan_analysis(options, [1, 2], ["h"])
    make_analysis(tmp_path, TOKENS, plan)
    outputs = []
    for run in ("a", "b"):
        draw_figures(
            "tiny",
            tmp_path / "matrices.npz",
            tmp_path / "summary.parquet",
            plan,
            tmp_path / run / "f",
            tmp_path / run / "a",
            STYLE,
            threads=1,
            mp4=False,
        )
        outputs.append({p.relative_to(tmp_path / run): p.read_bytes() for p in (tmp_path / run).rglob("*.*")})
    assert outputs[0] == outputs[1] and len(outputs[0]) == 5 + 2 * 2


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_mp4_where_ffmpeg_is_present(tmp_path):
    frames = [np.full((101, 121, 4), v, np.uint8) for v in (0, 128, 255)]
    path = write_mp4(frames, tmp_path / "a.mp4", frame_durations(3, 0.5, 1.0))
    assert path.stat().st_size > 500
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
    )
    assert float(probe.stdout) == pytest.approx(2.5)  # 0.5 + 0.5 + (0.5 + 1.0 pause)


def test_mp4_without_ffmpeg_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    assert not mp4_available(STYLE)
    with pytest.raises(RuntimeError, match="ffmpeg is not on PATH"):
        write_mp4([np.zeros((4, 4, 4), np.uint8)], tmp_path / "a.mp4", [1.0])


def test_frame_durations():
    assert frame_durations(3, 1.0, 2.0) == [1.0, 1.0, 3.0]


@pytest.mark.parametrize("kind", ["distance", "magnitude", "signed", "cross", "onehot"])
def test_colours_in_blocks_of_rows_equal_colouring_the_whole_matrix(kind, monkeypatch):
    rng = np.random.default_rng(2)
    matrix = rng.uniform(0, 2, (17, 17)) if kind == "distance" else rng.uniform(-1, 1, (17, 17))
    whole = band_colours(matrix, kind, STYLE)
    monkeypatch.setattr(style_module, "COLOUR_ROWS", 4)
    np.testing.assert_array_equal(band_colours(matrix, kind, STYLE), whole)


def test_the_double_repeat_draws_a_bar_line_like_the_others():
    """'::' is a bar line (tokens.is_bar): the heatmaps and the probe figures draw it."""
    from matplotlib.figure import Figure

    from folkrnn_lens.figures.sheet import draw_bar_lines

    tokens = ["<s>", "M:4/4", "K:Cmaj", "A", "|", "B", "::", "c", ":|", "d"]
    expected = [4, 6, 8]
    canvas = MatrixCanvas(tokens, np.zeros(len(tokens), int), STYLE, side_inches=2.0, dpi=50)
    vertical = [segment[0][0] for segment in canvas.lines[0].get_segments() if segment[0][0] == segment[1][0]]
    assert sorted(vertical) == expected
    ax = Figure().add_subplot()
    draw_bar_lines(ax, tokens, len(tokens), STYLE.colours["bar_lines"])
    segments = ax.collections[0].get_segments()
    assert sorted(s[0][0] for s in segments if s[0][0] == s[1][0]) == expected
