"""The notated transcription: ABC from tokens, bar numbers from the bar column."""

import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from folkrnn_lens.figures import score
from folkrnn_lens.tokens.format import bar_indices

needs_abcm2ps = pytest.mark.skipif(shutil.which("abcm2ps") is None, reason="abcm2ps is not installed")

REEL = [
    "M:4/4",
    "K:Cmix",
    "|:",
    "F",
    "A",
    "A",
    "B",
    "A",
    "F",
    "E",
    "D",
    "|",
    "(3",
    "F",
    "E",
    "D",
    "[",
    "E",
    "G",
    "]",
    "2",
    "z",
    "2",
    "c",
    "/2",
    "d",
    "/2",
    "|1",
    "F",
    "D",
    "E",
    "C",
    "D",
    "4",
    ":|",
    "|2",
    "F",
    "D",
    "E",
    "C",
    "D",
    "2",
    "d",
    "e",
    "|",
]


def steps_file(path, tokens):
    tokens = ["<s>", *tokens]
    table = pa.table({"input_token": tokens, "bar": pa.array(bar_indices(tokens), pa.int32())})
    pq.write_table(table, path)
    return path


def test_abc_has_the_header_and_the_bar_numbers_of_the_column():
    bars = bar_indices(REEL)
    abc = score.abc_text(REEL, bars, "reel")
    lines = abc.splitlines()
    assert lines[:5] == ["X:1", "T:reel", "M:4/4", "L:1/8", "K:Cmix"]
    body = "\n".join(lines[5:])
    assert body.startswith('|:"^0"FA AB AF ED|"^1"(3FED [EG]2 z2 c/2d/2|1"^2"FD EC D4:| [2"^3"FD EC D2 de|')
    assert [int(n) for n in re.findall(r'"\^(\d+)"', body)] == sorted(set(bars))


def test_a_pickup_is_bar_zero_and_lines_break_every_four_bars():
    tokens = ["M:6/8", "K:Cmaj", "G", "|"] + ["c", "2", "A", "B", "c", "d", "|"] * 5
    abc = score.abc_text(tokens, bar_indices(tokens), "jig")
    body = abc.splitlines()[5:]
    assert body[0].startswith('"^0"G|"^1"c2A Bcd|')
    assert len(body) == 2 and body[1].startswith('"^4"')


def test_tokens_that_are_not_a_tune_are_still_written():
    abc = score.abc_text(["g'", "7/2", "M:4/4", "c"], [0, 0, 0, 0], "gen")
    assert "T:(no meter token: drawn in 4/4)" in abc and "T:(no mode token: drawn in C major)" in abc
    assert abc.rstrip().endswith('"^0"g\'7/2[M:4/4]c')


@needs_abcm2ps
def test_score_svg_shows_exactly_the_bars_of_the_column(tmp_path):
    steps = steps_file(tmp_path / "steps.parquet", REEL)
    found = score.render_score("reel", steps, tmp_path / "score.abc", tmp_path / "score.svg", required=True)
    assert found == [0, 1, 2, 3]  # abcm2ps's own count would say 1 2 3 3
    svg = (tmp_path / "score.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    assert "CreationDate" not in svg and "CommandLine" not in svg  # the same bytes every run
    assert score.bar_numbers_in_svg(svg) == [0, 1, 2, 3]


@needs_abcm2ps
def test_score_of_a_real_tune_from_the_excerpt(tmp_path, excerpt):
    tune = excerpt[1]
    steps = steps_file(tmp_path / "steps.parquet", tune.tokens)
    found = score.render_score("tune", steps, tmp_path / "score.abc", tmp_path / "score.svg", required=True)
    bars = bar_indices(["<s>", *tune.tokens])
    assert found == sorted(set(bars))


def test_without_abcm2ps_the_svg_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(score.shutil, "which", lambda name: None)
    steps = steps_file(tmp_path / "steps.parquet", REEL)
    assert score.render_score("reel", steps, tmp_path / "s.abc", tmp_path / "s.svg") == []
    assert "abcm2ps is not installed" in (tmp_path / "s.svg").read_text()
    assert (tmp_path / "s.abc").read_text().startswith("X:1")
    with pytest.raises(score.ScoreError, match="abcm2ps is not installed"):
        score.render_score("reel", steps, tmp_path / "s.abc", tmp_path / "s.svg", required=True)


def test_a_bar_column_that_disagrees_with_the_tokens_is_refused(tmp_path):
    tokens = ["<s>", "M:4/4", "K:Cmaj", "c", "|", "d", "|"]
    pq.write_table(
        pa.table({"input_token": tokens, "bar": pa.array([0] * 7, pa.int32())}), tmp_path / "s.parquet"
    )
    with pytest.raises(score.ScoreError, match="bar column differs"):
        score.render_score("x", tmp_path / "s.parquet", tmp_path / "s.abc", tmp_path / "s.svg")
