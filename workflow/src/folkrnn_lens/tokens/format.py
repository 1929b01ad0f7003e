"""The folk-rnn v2 token format: transcriptions, token files and bar indices.

A token file holds tunes separated by blank lines; each tune is a meter line
(``M:6/8``), a mode line (``K:Cmaj``) and one line of body tokens separated by
spaces, exactly as folk-rnn's ``data_v2`` training file.  A model reads
``<s>`` followed by the tune's tokens and is trained to predict ``</s>`` last.
Token files are read as UTF-8, with or without a byte-order mark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

START = "<s>"
END = "</s>"
MODES = ("K:Cmaj", "K:Cmin", "K:Cdor", "K:Cmix")

_METER = re.compile(r"^M:\d+/\d+$")
_NOTE = re.compile(r"[_=^]*[A-Ga-g][,']*")
# every token folkrnn_lens.tokens.abc writes (and folk-rnn's data_v2 holds), besides <s> and </s>
_TUNE_TOKEN = re.compile(
    r"""
      M:[0-9]+/[0-9]+ | K:C(maj|min|dor|mix)                    # meter, mode
    | (\^\^|\^|=|__|_)?[A-Ga-g][,']* | z                         # note, rest
    | ([0-9]+ | [0-9]*/[0-9]+) [<>]{0,3}                       # duration (folk-rnn v2: also 2>, /2<)
    | \| | \|: | :\| | :: | \|[0-9]+                             # bar lines, endings
    | >{1,3} | <{1,3} | \([2-9] | \[ | \]                        # broken rhythm, tuplet, chord
    """,
    re.VERBOSE,
)


class TokenFormatError(ValueError):
    """A token file that is not in the folk-rnn format; the message names where."""


@dataclass(frozen=True)
class Transcription:
    """One tune in folk-rnn tokens: meter, mode and body (without <s> and </s>)."""

    meter: str
    mode: str
    body: tuple[str, ...]
    title: str = ""

    @property
    def tokens(self) -> list[str]:
        """The tokens a model reads after <s>: meter, mode, then the body."""
        return [self.meter, self.mode, *self.body]

    def to_text(self) -> str:
        return f"{self.meter}\n{self.mode}\n{' '.join(self.body)}\n"


def is_bar(token: str) -> bool:
    """A bar line or repeat sign: a token containing '|', or '::', the double repeat,
    which ABC notates as a bar line (docs/specification.md)."""
    return "|" in token or token == "::"


def is_sounding(token: str) -> bool:
    """A note or a rest: the tokens that fill a bar."""
    return token == "z" or is_note(token)


def is_note(token: str) -> bool:
    return bool(_NOTE.fullmatch(token))


_DURATION = re.compile(r"([0-9]+|[0-9]*/[0-9]+)[<>]{0,3}")

TOKEN_TYPES = ("pitch", "duration", "bar", "other")
"""The coarse types of a predicted token that the interventions summarise by."""


def token_type(token: str) -> str:
    """``pitch`` (a note), ``duration`` (a length, ``2``, ``/2``, ``3/2>``), ``bar`` (a
    bar line or repeat sign), or ``other`` (rest, meter, mode, broken rhythm, tuplet,
    chord bracket, ``<s>``, ``</s>``)."""
    if is_note(token):
        return "pitch"
    if _DURATION.fullmatch(token):
        return "duration"
    return "bar" if is_bar(token) else "other"


def is_tune_token(token: str) -> bool:
    """A token of folk-rnn's format that a tune can hold: meter, mode or body token."""
    return bool(_TUNE_TOKEN.fullmatch(token))


def bar_indices(tokens: list[str]) -> list[int]:
    """The bar index (from 0) of each token.

    A bar line belongs to the bar it closes. A bar line that closes nothing
    (a leading ``|:``, or ``|2`` straight after ``:|``) opens no new bar, so
    a pickup is bar 0 and the numbers match the bars of the score.
    """
    indices, bar, filled = [], 0, False
    for token in tokens:
        indices.append(bar)
        if is_bar(token):
            if filled:
                bar, filled = bar + 1, False
        elif is_sounding(token):
            filled = True
    return indices


def parse_transcription(lines: list[str], source: str, first_line: int) -> Transcription:
    """One tune from its non-empty lines; errors name the file and line."""
    where = f"{source}, tune at line {first_line}"
    if len(lines) < 2:
        raise TokenFormatError(f"{where}: expected a meter line and a mode line, got {lines!r}")
    meter, mode = lines[0].strip(), lines[1].strip()
    if not _METER.match(meter):
        raise TokenFormatError(f"{where}: line {first_line}: expected a meter like 'M:6/8', got {meter!r}")
    if mode not in MODES:
        raise TokenFormatError(f"{where}: line {first_line + 1}: expected a mode in {MODES}, got {mode!r}")
    body = []
    for line_number, line in enumerate(lines[2:], first_line + 2):
        for token in line.split():
            body.append(token)
            if token in (START, END) or token.startswith(("M:", "K:")):
                raise TokenFormatError(
                    f"{where}: line {line_number}: body token {len(body)} {token!r} is not allowed in a body"
                )
    _check_notes(body, where)
    return Transcription(meter, mode, tuple(body))


def _check_notes(body: list[str], where: str) -> None:
    """Refuse a tune without notes, as the ABC path does: every statistic of it would be NaN."""
    if not body:
        raise TokenFormatError(f"{where}: the tune has no body (no notes) after its meter and mode lines")
    if not any(is_note(token) for token in body):
        raise TokenFormatError(f"{where}: the tune's body has no notes")


def parse_token_text(text: str, source: str = "<string>") -> list[Transcription]:
    """All tunes of a token file's text, in order."""
    tunes, block, start = [], [], 0
    for number, line in enumerate(text.splitlines() + [""], start=1):
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            tunes.append(parse_transcription(block, source, start))
            block = []
    return tunes


def read_token_file(path: str | Path) -> list[Transcription]:
    """The tunes of a UTF-8 token file; a byte-order mark (Windows editors) is dropped."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise TokenFormatError(f"{path}: not a UTF-8 text file ({error})") from None
    return parse_token_text(text, str(path))


def format_token_text(tunes: list[Transcription]) -> str:
    """The data_v2 format: tunes separated by one blank line."""
    return "\n".join(tune.to_text() for tune in tunes)


def write_token_file(path: str | Path, tunes: list[Transcription]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(format_token_text(tunes), encoding="utf-8")


def select_transcription(tunes: list[Transcription], index: int, source: str) -> Transcription:
    """The tune at 1-based position ``index`` of a token file."""
    if not 1 <= index <= len(tunes):
        raise TokenFormatError(f"{source}: asked for tune {index}, but the file holds {len(tunes)} tunes")
    return tunes[index - 1]


def vocabulary_of(token_files: list[str | Path]) -> list[str]:
    """<s>, </s>, then every token of the files, sorted: stable for the same files."""
    tokens = set()
    for path in token_files:
        for tune in read_token_file(path):
            tokens.update(tune.tokens)
    return [START, END, *sorted(tokens - {START, END})]
