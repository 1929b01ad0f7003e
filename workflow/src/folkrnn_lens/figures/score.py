"""The notated transcription: folk-rnn tokens -> ABC with bar numbers -> SVG by abcm2ps.

The ABC is the tune as the model read it: ``X:1``, ``T:`` the transcription's
name, the meter token's ``M:``, ``L:1/8`` (folk-rnn durations are in eighths),
the mode token's ``K:`` (C major, minor, dorian or mixolydian: accidentals in
the tokens are relative to that key signature), then the body tokens joined,
with a space (a beam break) at each beat and a line break every four bars.

Bar numbers are not abcm2ps's own count (which starts at 1 without a pickup and
gives both endings of a repeat the same number). Instead each bar's number is
written into the ABC as a bold annotation (``"^7"``) on the first note of that
bar, taken from the ``bar`` column of ``steps.parquet``: the numbers in the score
are the numbers in the matrices' axes. ``render_score`` then reads the numbers
back out of the SVG and checks that they are exactly the bars of the column.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from fractions import Fraction
from html import escape
from pathlib import Path

from folkrnn_lens.tokens.format import bar_indices, is_bar, is_sounding

log = logging.getLogger(__name__)

ANNOTATION_FONT = "Helvetica-Bold 10"
# an annotation group's own texts, up to its end or to a nested group (such as a time signature)
_SVG_ANNOTATION_GROUP = re.compile(r'<g[^>]*style="font:bold 10\.00px Helvetica">((?:(?!<g|</g>).)*)', re.S)
_SVG_TEXT = re.compile(r"<text[^>]*>([^<]*)</text>")
_SVG_PLACED_TEXT = re.compile(r'<text x="([-\d.]+)" y="([-\d.]+)"[^>]*>([^<]*)</text>')
_DURATION = re.compile(r"^(\d*)/?(\d*)$")
_VOLATILE_SVG = re.compile(r"<!-- (CreationDate|CommandLine): .*? -->\n|<title>.*?</title>\n")


class ScoreError(RuntimeError):
    """The score could not be made; the message says why."""


def _duration(token: str) -> Fraction | None:
    """The multiplier of a duration token ('2', '/2', '3/2'), else None."""
    match = _DURATION.match(token)
    if not match or token in ("", "/"):
        return None
    num, den = match.groups()
    if "/" in token:
        return Fraction(int(num or 1), int(den or 2))
    return Fraction(int(num))


def _beat(meter: str) -> Fraction:
    """Eighths per beat: dotted quarters in compound meters, else the meter's unit."""
    match = re.match(r"^M:(\d+)/(\d+)$", meter)
    if not match:
        return Fraction(2)
    num, den = int(match[1]), int(match[2])
    if den == 8 and num % 3 == 0:
        return Fraction(3)
    return Fraction(8, den)


def _starts_note(token: str) -> bool:
    return is_sounding(token) or token == "[" or token.startswith("(")


TUPLET_TIME = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}


def abc_text(tokens: list[str], bars: list[int], title: str) -> str:
    """The ABC of a tune from the tokens a model read (without ``<s>``: meter, mode,
    body) and the bar index of each, as in ``steps.parquet``.

    A token list that is not a tune (an untrained model's output may lack the
    meter or mode, or hold them in the body) is still written: a missing meter
    or mode becomes 4/4 or C major with a note in the title, and a meter or mode
    token in the body becomes an inline field.
    """
    if len(tokens) != len(bars):
        raise ValueError(f"{len(tokens)} tokens but {len(bars)} bar numbers")
    notes = []
    meter, mode, start = "M:4/4", "K:Cmaj", 0
    if tokens and tokens[0].startswith("M:"):
        meter, start = tokens[0], 1
    else:
        notes.append("no meter token: drawn in 4/4")
    if len(tokens) > start and tokens[start].startswith("K:"):
        mode, start = tokens[start], start + 1
    else:
        notes.append("no mode token: drawn in C major")
    header = ["X:1", f"T:{title}", *[f"T:({note})" for note in notes], meter, "L:1/8", mode]
    if not re.match(r"^M:\d+/\d+$", meter):
        header[header.index(meter)] = "M:4/4"
    beat = _beat(meter)
    body, line = [], []
    position, factor, tuplet_left, in_chord = Fraction(0), Fraction(1), 0, False
    numbered, last, last_bar = set(), None, False
    first_bar = bars[start] if len(bars) > start else 0
    for index in range(start, len(tokens)):
        token, bar = tokens[index], bars[index]
        text = token
        if token.startswith(("M:", "K:")):
            text = f"[{token}]"
        elif is_bar(token) and last_bar:  # two bar tokens: keep them apart (":| [2", "|| |:")
            text = f" [{token[1:]}" if re.match(r"^\|\d$", token) else f" {token}"
        elif _starts_note(token) and not in_chord:
            if bar not in numbered:
                text = f'"^{bar}"{text}'
                numbered.add(bar)
            if position > 0 and position % beat == 0 and last not in ("(", ">", "<") and line:
                line.append(" ")
        line.append(text)
        if is_bar(token):
            position, factor, tuplet_left = Fraction(0), Fraction(1), 0
            closes = index + 1 < len(bars) and bars[index + 1] != bar
            if closes and (bar - first_bar) % 4 == 3:
                body.append("".join(line))
                line = []
        elif token == "[":
            in_chord = True
        elif token == "]":
            in_chord = False
            position += factor
            tuplet_left, factor = _tuplet_step(tuplet_left, factor)
        elif token.startswith("(") and token[1:].isdigit():
            p = int(token[1:])
            factor, tuplet_left = Fraction(TUPLET_TIME.get(p, 2), p), p
        elif is_sounding(token) and not in_chord:
            position += factor
            tuplet_left, factor = _tuplet_step(tuplet_left, factor)
        elif (multiplier := _duration(token)) is not None and not in_chord:
            position += (multiplier - 1) * (factor if tuplet_left else 1)
        last = token[0] if token else None
        last_bar = is_bar(token)
    if line:
        body.append("".join(line))
    return "\n".join(header + body) + "\n"


def _tuplet_step(left: int, factor: Fraction) -> tuple[int, Fraction]:
    if left <= 1:
        return 0, Fraction(1)
    return left - 1, factor


def bar_numbers_in_svg(svg: str) -> list[int]:
    """The bar numbers written by ``abc_text`` as they appear in abcm2ps's SVG, in order."""
    return [bar for bar, _, _ in bar_number_positions(svg)]


def bar_number_positions(svg: str) -> list[tuple[int, float, float]]:
    """(bar, x, y) of each bar number ``abc_text`` wrote, where abcm2ps drew it: the
    explorer marks a bar on the score from these."""
    found = []
    for group in _SVG_ANNOTATION_GROUP.findall(svg):
        for x, y, text in _SVG_PLACED_TEXT.findall(group):
            if text.strip().isdigit():
                found.append((int(text), float(x), float(y)))
    return found


def placeholder_svg(message: str) -> str:
    """A small SVG that says why there is no score, so the report shows the reason."""
    lines = message.splitlines() or [""]
    texts = "".join(
        f'<text x="10" y="{24 + 18 * i}" font-family="sans-serif" font-size="14">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    height = 24 + 18 * len(lines)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="720" height="{height}">'
        f'<rect width="100%" height="100%" fill="#fff8e0"/>{texts}</svg>\n'
    )


def render_svg(abc: str) -> str:
    """The SVG of one tune by abcm2ps (``-g``: one SVG per tune), without the lines
    that change from run to run (its creation date, command line and temp name)."""
    abcm2ps = shutil.which("abcm2ps")
    if abcm2ps is None:
        raise ScoreError("abcm2ps is not installed (Debian/Ubuntu: apt-get install abcm2ps)")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "tune.abc"
        source.write_text(f"%%annotationfont {ANNOTATION_FONT}\n%%measurenb -1\n{abc}", encoding="utf-8")
        result = subprocess.run(
            [abcm2ps, "-g", "-O", "score", "tune.abc"], cwd=tmp, capture_output=True, text=True
        )
        outputs = sorted(Path(tmp).glob("score*.svg"))
        if result.returncode != 0 or not outputs:
            raise ScoreError(f"abcm2ps failed ({result.returncode}): {result.stderr.strip()[-1000:]}")
        for line in result.stderr.splitlines():
            if "warning" in line.lower() or "error" in line.lower():
                log.info("abcm2ps: %s", line)
        return _VOLATILE_SVG.sub("", outputs[0].read_text(encoding="utf-8"))


def render_score(
    name: str, steps_path: str | Path, abc_path: str | Path, svg_path: str | Path, required: bool = False
) -> list[int]:
    """``score.abc`` and ``score.svg`` of one transcription; returns the bar numbers
    found in the SVG. Without abcm2ps (or if it fails) the SVG says why, unless
    ``required``, in which case that is an error."""
    import pyarrow.parquet as pq

    steps = pq.read_table(steps_path, columns=["input_token", "bar"])
    tokens, bars = steps["input_token"].to_pylist(), steps["bar"].to_pylist()
    if bar_indices(tokens) != bars:
        raise ScoreError(f"{steps_path}: the bar column differs from the bars of its tokens")
    if tokens and tokens[0] == "<s>":
        tokens, bars = tokens[1:], bars[1:]
    abc = abc_text(tokens, bars, name)
    Path(abc_path).parent.mkdir(parents=True, exist_ok=True)
    Path(abc_path).write_text(abc, encoding="utf-8")
    expected = sorted({bar for token, bar in zip(tokens, bars) if _starts_note(token)})
    try:
        svg = render_svg(abc)
    except ScoreError as error:
        if required:
            raise
        log.warning("%s: no score: %s", name, error)
        Path(svg_path).write_text(
            placeholder_svg(f"No score for {name}: {error}.\nThe ABC is in {abc_path}.")
        )
        return []
    found = bar_numbers_in_svg(svg)
    if sorted(found) != expected:
        log.warning("%s: bar numbers in the score %s differ from the bar column %s", name, found, expected)
    Path(svg_path).write_text(svg, encoding="utf-8")
    log.info("%s: score with bars %d..%d", name, min(found, default=0), max(found, default=0))
    return found
