"""Read ABC collections and normalise their tunes into folk-rnn v2 tokens.

folk-rnn's training data (data_v2) holds each tune as a meter token (``M:6/8``),
a mode token in C (``K:Cmaj``, ``K:Cmin``, ``K:Cdor``, ``K:Cmix``) and body
tokens separated by spaces.  This module turns standard ABC, as real
collections write it, into that form:

* Tunes start at ``X:`` and end at a blank line (ABC 2.1).  ``M:`` and ``L:``
  in the file header (before the first ``X:``) are defaults for every tune.
* The tune is transposed diatonically to C, keeping its mode (major, minor,
  dorian, mixolydian; other modes are skipped).  The tonic letter moves by
  -3..+3 letters, every note letter by the same amount (octave marks and case
  follow), and an explicit accidental is rewritten so that its alteration
  relative to the target key signature equals its alteration relative to the
  source one.  Unmarked notes stay unmarked, so ABC's bar-local accidental
  propagation means exactly the same after the transposition.
* Durations are written as if ``L:1/8``: a separate token after the note, rest
  or chord (``A 2``, ``A /2``, ``A 3/2``), nothing for one eighth.
* Bar lines, repeats and endings are mapped onto folk-rnn's forms
  (``|``, ``|:``, ``:|``, ``::``, ``|1``, ``|2``); broken rhythm (``>``,
  ``<``, ``>>``), tuplets (``(3``), rests ``z`` and chords ``[ C E ] 2`` are kept.
* Decorations, chord symbols, annotations, grace notes, slurs, ties, line
  breaks, lyrics and other non-musical fields are dropped.

Anything that cannot be normalised without changing the music (other modes,
meter or key changes, voices, multi-measure rests, unknown symbols...) makes
the tune ``status="skipped"`` with a reason naming the line and the offending
text; nothing is silently altered.

Files are read as UTF-8, with or without a byte-order mark, and otherwise as
Latin-1 (which older collections use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from folkrnn_lens.tokens.format import is_bar


@dataclass(frozen=True)
class AbcTune:
    source: str  # file path or label
    x: int | None  # X: number
    title: str  # first T: line, "" if none
    meter: str | None  # "M:6/8" (None when skipped before it was known)
    mode: str | None  # "K:Cmaj"
    body: tuple[str, ...]  # body tokens only (no meter/mode, no <s> </s>)
    status: str  # "ok" or "skipped"
    reason: str  # "" when ok; otherwise e.g. "line 14: unsupported mode 'Aphr'"
    line: int  # 1-based line number of the tune's X: line in the file


class AbcError(ValueError):
    """A requested tune is missing or could not be normalised."""


class _Skip(Exception):
    """Internal: the current tune cannot be normalised (message is the reason)."""


# ---------------------------------------------------------------- keys

_LETTERS = "CDEFGAB"
_LETTER_FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}
_SHARPS = "FCGDAEB"  # order in which key signatures add sharps (flats: reversed)
_MODE_FIFTHS = {"maj": 0, "mix": -1, "dor": -2, "min": -3}
# full mode names: any prefix of >= 3 letters is accepted (ABC 2.1)
_MODE_NAMES = {
    "major": "maj",
    "ionian": "maj",
    "minor": "min",
    "aeolian": "min",
    "dorian": "dor",
    "mixolydian": "mix",
    "phrygian": None,
    "lydian": None,
    "locrian": None,
}
_CLEF_WORDS = set(
    "treble bass alto tenor perc none bass3 alto1 alto2 tenor1 tenor2 baritone soprano mezzosoprano".split()
)
# K: options that only change the display
_IGNORED_KEY_OPTIONS = set(
    "clef middle m transpose t stafflines staffscale cue instrument sound shift".split()
)


@dataclass(frozen=True)
class _Key:
    tonic: str  # "F#", "Bb", "G"
    mode: str  # "maj", "min", "dor" or "mix"

    @property
    def letter_shift(self) -> int:
        """Letters to move so the tonic lands on C: the nearest, in -3..+3."""
        return (-_LETTERS.index(self.tonic[0]) + 3) % 7 - 3

    def signature(self) -> dict[str, int]:
        """Alteration (in semitones) the key signature gives each letter."""
        alter = {"#": 1, "b": -1, "": 0}[self.tonic[1:]]
        fifths = _LETTER_FIFTHS[self.tonic[0]] + 7 * alter + _MODE_FIFTHS[self.mode]
        sig = dict.fromkeys(_LETTERS, 0)
        order, step = (_SHARPS, 1) if fifths > 0 else (_SHARPS[::-1], -1)
        for i in range(abs(fifths)):
            sig[order[i % 7]] += step
        return sig


def _parse_key(value: str) -> _Key:
    """Parse a K: value; raise _Skip for keys folk-rnn's data cannot hold."""
    text = value.strip()
    match = re.match(r"([A-G])([#b]?)([A-Za-z]*)\s*(.*)$", text)
    if not match:
        raise _Skip(f"unsupported key '{text}'")
    letter, accidental, word, rest = match.groups()
    extras = rest.split()
    # "K:A minor": the mode may follow the tonic after a space
    if not word and extras and extras[0].isalpha() and extras[0].lower() not in _CLEF_WORDS:
        word = extras.pop(0)
    mode = _parse_mode(word, text)
    for extra in extras:
        _check_key_option(extra, text)
    return _Key(letter + accidental, mode)


def _parse_mode(word: str, key_text: str) -> str:
    lowered = word.lower()
    if lowered == "":
        return "maj"
    if lowered == "m":
        return "min"
    for name, mode in _MODE_NAMES.items():
        if len(lowered) >= 3 and name.startswith(lowered):
            if mode is None:
                raise _Skip(f"unsupported mode '{key_text}'")
            return mode
    raise _Skip(f"unsupported mode '{key_text}'")


def _check_key_option(option: str, key_text: str) -> None:
    if option[0] in "^_=":
        raise _Skip(f"explicit accidentals in key '{key_text}'")
    name = option.split("=", 1)[0].lower()
    if "=" in option and name in _IGNORED_KEY_OPTIONS:
        return  # display-only options
    if option.lower() in _CLEF_WORDS:
        return
    raise _Skip(f"unsupported key '{key_text}'")


# ---------------------------------------------------------------- meter, length


def _parse_meter(value: str) -> str:
    """Return folk-rnn's meter token for an M: value."""
    text = value.replace(" ", "")
    if text == "C":
        return "M:4/4"
    if text == "C|":
        return "M:2/2"
    if re.fullmatch(r"[1-9][0-9]{0,2}/[1-9][0-9]{0,2}", text):
        return "M:" + text
    raise _Skip(f"unsupported meter '{value.strip()}'")


def _default_unit(meter: str) -> Fraction:
    # ABC 2.1: L defaults to 1/16 when the meter is below 3/4, otherwise 1/8
    return Fraction(1, 16) if Fraction(meter[2:]) < Fraction(3, 4) else Fraction(1, 8)


def _parse_unit(value: str) -> Fraction:
    text = value.replace(" ", "")
    if re.fullmatch(r"[1-9][0-9]{0,2}/[1-9][0-9]{0,2}|1", text):
        return Fraction(text)
    raise _Skip(f"unsupported unit length 'L:{value.strip()}'")


def _length_token(length: Fraction) -> str | None:
    """Token for a length counted in eighth notes; None for exactly one eighth."""
    if length == 1:
        return None
    if length.denominator == 1:
        return str(length.numerator)
    if length.numerator == 1:
        return f"/{length.denominator}"
    return f"{length.numerator}/{length.denominator}"


# ---------------------------------------------------------------- body tokens

_LENGTH_RE = re.compile(r"([0-9]{0,4})((?:/[0-9]{0,4})*)")  # bounded: no huge ints
_TOKEN_RE = re.compile(
    r"""
   (?P<space>[\s`$y]+)
 | (?P<deco>![^!]*!)
 | (?P<plus>\+[^+]*\+)
 | (?P<annotation>"[^"]*")
 | (?P<grace>\{[^}]*\})
 | (?P<field>\[[A-Za-z]:[^\]]*\])
 | (?P<invisible_bar>\[\|\])
 | (?P<odd_bar>\|:\|(?!:))
 | (?P<barline>(?P<bar>:*\[?\|[|\]]*:*|::+)(?P<ending>\[?[0-9]+(?:[-,][0-9]+)*)?)
 | (?P<lone_ending>\[[0-9]+(?:[-,][0-9]+)*)
 | (?P<chord>\[)
 | (?P<chord_end>\])
 | (?P<tuplet>\((?P<p>[0-9]{1,2})(?::(?P<q>[0-9]{0,2})(?::(?P<r>[0-9]{0,2}))?)?)
 | (?P<slur>[()])
 | (?P<note>(?P<accidental>\^\^|\^|__|_|=)?(?P<letter>[A-Ga-g])(?P<octave>[,']*))
 | (?P<rest>[zx])
 | (?P<broken>>{1,3}|<{1,3})
 | (?P<tie>-)
 | (?P<decoration>[~.H-Wh-w])
 | (?P<multi_rest>[ZX][0-9]*)
 | (?P<overlay>&)
""",
    re.VERBOSE,
)
_OLD_CHORD_RE = re.compile(r"(?:[_^=]*[A-Ga-g][,']*[0-9]*/*[0-9]*){2,}")
_ACCIDENTALS = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_ACCIDENTAL_TEXT = {v: k for k, v in _ACCIDENTALS.items()}
_DEFAULT_TUPLET_Q = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}
_REJECTIONS = {
    "{": "unterminated grace notes",
    '"': "unterminated chord symbol",
    "!": "unterminated decoration",
    "^": "accidental without a note",
    "_": "accidental without a note",
    "=": "accidental without a note",
}
_FIELD_LINE_RE = re.compile(r"([A-Zmrsw+]):(.*)$")
_COMMENT_RE = re.compile(r"(?<!\\)%.*$")


def _field_line(text: str) -> tuple[str, str] | None:
    """(name, value) of a field line; "A:|" style lines are music, not fields."""
    match = _FIELD_LINE_RE.match(text)
    if match is None:
        return None
    name, value = match.groups()
    if name in "ABCDEFG" and value.startswith(("|", ":")):
        return None
    return name, value


def _pitch_token(
    accidental: str | None,
    letter: str,
    octave: str,
    shift: int,
    source_sig: dict[str, int],
    target_sig: dict[str, int],
) -> str:
    """Transpose one note by `shift` letters, keeping its key-relative accidental."""
    step = _LETTERS.index(letter.upper()) + (7 if letter.islower() else 0)
    step += 7 * (octave.count("'") - octave.count(",")) + shift
    name = _LETTERS[step % 7]
    level = step // 7  # 0 = the octave of middle C, written in capitals
    text = name.lower() + "'" * (level - 1) if level >= 1 else name + "," * -level
    if accidental is None:
        return text
    alter = _ACCIDENTALS[accidental] - source_sig[letter.upper()] + target_sig[name]
    if alter not in _ACCIDENTAL_TEXT:
        raise _Skip(f"accidental '{accidental}{letter}{octave}' cannot be written in C")
    return _ACCIDENTAL_TEXT[alter] + text


class _TuneReader:
    """Reads one tune's lines, header then body, collecting folk-rnn tokens."""

    def __init__(self, file_defaults: dict[str, str]) -> None:
        self.file_defaults = file_defaults  # raw M:/L: values of the file header
        self.x: int | None = None
        self.title = ""
        self.meter: str | None = None
        self.unit: Fraction | None = None  # until known: L:, or the default derived from M:
        self.key: _Key | None = None
        self.tokens: list[str] = []
        self.notes = 0
        self.in_chord = False
        self.chord_notes = 0
        self.continued = ""  # music lines ending in "\\", awaiting the next one
        self.shift = 0  # letters to move; with the key signatures, set by the first K:
        self.source_sig: dict[str, int] = {}
        self.target_sig: dict[str, int] = {}

    @property
    def mode_token(self) -> str | None:
        return None if self.key is None else "K:C" + self.key.mode

    # ---- lines

    def read_line(self, text: str) -> None:
        if text.startswith("%%"):
            return  # formatting directive
        text = _COMMENT_RE.sub("", text)
        field = _field_line(text)
        if field:
            if field[0] in "KLMV":
                self.flush_continued()  # the joined music precedes the change
            self.read_field(*field)
        elif text.strip():
            if self.key is None:
                raise _Skip(f"music before the K: field: '{text.strip()[:30]}'")
            text = text.rstrip()
            if text.endswith("\\"):
                self.continued += text[:-1]  # ABC 2.1: "\" joins the next line
            else:
                self.read_music(self.continued + text)
                self.continued = ""

    def flush_continued(self) -> None:
        if self.continued:
            self.read_music(self.continued)
            self.continued = ""

    def read_field(self, name: str, value: str) -> None:
        value = value.strip()
        if name == "X":
            match = re.match(r"[0-9]{1,9}", value)
            self.x = int(match.group()) if match else None
        elif name == "T" and self.key is None:
            self.title = self.title or value
        elif name == "M":
            self.set_meter(value)
        elif name == "L":
            self.unit = _parse_unit(value)
        elif name == "K":
            self.set_key(value)
        elif name == "V":
            raise _Skip(f"voices are not supported: 'V:{value}'")
        elif name == "m":
            raise _Skip(f"macros are not supported: 'm:{value}'")
        # other fields (titles, notes, lyrics, parts, U: symbols...) carry no
        # music: every symbol U: may define (~, H-W, h-w) is dropped anyway

    def set_meter(self, value: str) -> None:
        meter = _parse_meter(value)
        if self.key is None:
            self.meter = meter
        elif meter != self.meter:
            raise _Skip(f"meter change to '{meter}'")

    def set_key(self, value: str) -> None:
        key = _parse_key(value)
        if self.key is None:
            self.apply_file_defaults()
            if self.meter is None:
                raise _Skip("no M: field before K:")
            self.key = key
            self.unit = self.unit or _default_unit(self.meter)
            self.shift = key.letter_shift
            self.source_sig = key.signature()
            self.target_sig = _Key("C", key.mode).signature()
        elif key != self.key:
            raise _Skip(f"key change to 'K:{value}'")

    def apply_file_defaults(self) -> None:
        # parsed only where the tune relies on them, so that a broken default
        # skips exactly the tunes that use it
        if self.meter is None and "M" in self.file_defaults:
            self.meter = _parse_meter(self.file_defaults["M"])
        if self.unit is None and "L" in self.file_defaults:
            self.unit = _parse_unit(self.file_defaults["L"])

    def finish(self) -> None:
        self.flush_continued()
        if self.key is None:
            raise _Skip("no K: field")
        if self.in_chord:
            raise _Skip("unterminated chord '['")
        if self.notes == 0:
            raise _Skip("no notes")

    # ---- music

    def read_music(self, text: str) -> None:
        pos = 0
        while pos < len(text):
            match = _TOKEN_RE.match(text, pos)
            if match is not None:
                pos = getattr(self, "on_" + match.lastgroup)(match, text)
            else:
                self.reject_char(text, pos)

    def reject_char(self, text: str, pos: int) -> None:
        char = text[pos]
        what = _REJECTIONS.get(char, "unexpected character")
        raise _Skip(f"{what} '{char}' in '{text[max(0, pos - 10) : pos + 10].strip()}'")

    def read_length(self, text: str, pos: int) -> tuple[Fraction, int]:
        """Parse an ABC length multiplier at pos; return (length in eighths, end)."""
        match = _LENGTH_RE.match(text, pos)
        numerator = int(match.group(1)) if match.group(1) else 1
        denominator = 1
        for part in match.group(2).split("/")[1:]:
            denominator *= int(part) if part else 2
        if numerator == 0 or denominator == 0:
            raise _Skip(f"zero length in '{text[max(0, pos - 3) : match.end()]}'")
        return Fraction(numerator, denominator) * self.unit * 8, match.end()

    def emit_length(self, text: str, pos: int) -> int:
        length, end = self.read_length(text, pos)
        token = _length_token(length)
        if token is not None:
            self.tokens.append(token)
        return end

    def on_note(self, match: re.Match, text: str) -> int:
        self.tokens.append(
            _pitch_token(
                match.group("accidental"),
                match.group("letter"),
                match.group("octave"),
                self.shift,
                self.source_sig,
                self.target_sig,
            )
        )
        self.notes += 1
        self.chord_notes += 1
        return self.emit_length(text, match.end())

    def on_rest(self, match: re.Match, text: str) -> int:
        if self.in_chord:
            raise _Skip(f"rest inside a chord in '{text.strip()[:30]}'")
        self.tokens.append("z")
        return self.emit_length(text, match.end())

    def on_chord(self, match: re.Match, text: str) -> int:
        if self.in_chord:
            raise _Skip(f"nested chord '[' in '{text.strip()[:30]}'")
        self.in_chord, self.chord_notes = True, 0
        self.tokens.append("[")
        return match.end()

    def on_chord_end(self, match: re.Match, text: str) -> int:
        if not self.in_chord or self.chord_notes == 0:
            raise _Skip(f"unexpected ']' in '{text.strip()[:30]}'")
        self.in_chord = False
        self.tokens.append("]")
        return self.emit_length(text, match.end())

    def on_barline(self, match: re.Match, text: str) -> int:
        if self.in_chord:
            raise _Skip(f"bar line inside a chord in '{text.strip()[:30]}'")
        bar = match.group("bar")
        if bar.strip(":") == "":
            token = "::"
        else:
            left, right = bar.startswith(":"), bar.endswith(":")
            token = "::" if left and right else ":|" if left else "|:" if right else "|"
        self.add_bar(token)
        if match.group("ending"):
            self.add_ending(match.group("ending"))
        return match.end()

    def on_invisible_bar(self, match: re.Match, text: str) -> int:
        # "[|]" (an anchor for D.C., segno or fermata) is a bar line
        self.add_bar("|")
        return match.end()

    def add_bar(self, token: str) -> None:
        """Append a bar token; adjacent bar lines ("|" at a line end and at the
        next line's start, "[|]|]") are one bar line, like "||"."""
        previous = self.tokens[-1] if self.tokens else ""
        if previous == "|":
            self.tokens[-1] = token
        elif not (token == "|" and is_bar(previous)):
            self.tokens.append(token)

    def on_odd_bar(self, match: re.Match, text: str) -> int:
        raise _Skip(f"ambiguous bar line '{match.group()}'")

    def on_lone_ending(self, match: re.Match, text: str) -> int:
        if not self.tokens or not is_bar(self.tokens[-1]):
            raise _Skip(f"ending '{match.group()}' not after a bar line")
        self.add_ending(match.group())
        return match.end()

    def add_ending(self, ending: str) -> None:
        number = ending.lstrip("[")
        if not number.isdigit():
            raise _Skip(f"unsupported ending '{ending}'")
        if self.tokens[-1] == "|":
            self.tokens[-1] = "|" + number  # "|1" is a bar line and an ending
        else:
            self.tokens.append("|" + number)  # ":|2" -> ":| |2" as in data_v2

    def on_tuplet(self, match: re.Match, text: str) -> int:
        p, q, r = int(match.group("p")), match.group("q"), match.group("r")
        if not 2 <= p <= 9 or (r and int(r) != p) or (q and int(q) != self.tuplet_q(p)):
            raise _Skip(f"unsupported tuplet '{match.group()}'")
        self.tokens.append(f"({p}")
        return match.end()

    def tuplet_q(self, p: int) -> int:
        numerator = int(self.meter[2:].split("/")[0])
        compound = numerator % 3 == 0 and numerator > 3
        return _DEFAULT_TUPLET_Q.get(p, 3 if compound else 2)

    def on_broken(self, match: re.Match, text: str) -> int:
        self.tokens.append(match.group())
        return match.end()

    def on_field(self, match: re.Match, text: str) -> int:
        field = match.group()[1:-1]
        self.read_field(field[0], field[2:])
        return match.end()

    def on_plus(self, match: re.Match, text: str) -> int:
        # ABC 1.6 wrote chords as +CEG+; ABC 2.1 reads +..+ as a decoration
        if _OLD_CHORD_RE.fullmatch(match.group()[1:-1]):
            raise _Skip(f"ambiguous '{match.group()}' (old chord or decoration)")
        return match.end()

    def on_multi_rest(self, match: re.Match, text: str) -> int:
        raise _Skip(f"multi-measure rest '{match.group()}'")

    def on_overlay(self, match: re.Match, text: str) -> int:
        raise _Skip("voice overlay '&'")

    def on_drop(self, match: re.Match, text: str) -> int:
        return match.end()

    # dropped: spacing, decorations, chord symbols, grace notes, slurs and ties
    on_space = on_deco = on_annotation = on_grace = on_slur = on_tie = on_drop
    on_decoration = on_drop


# ---------------------------------------------------------------- files


def _split_tunes(lines: list[str]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Return the file header lines and (start index, lines) for each tune."""
    starts = [i for i, line in enumerate(lines) if line.startswith("X:")]
    if not starts:  # a bare tune without X: (e.g. a pasted snippet)
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        starts, header = ([] if first is None else [first]), []
    else:
        header = lines[: starts[0]]
    tunes = []
    for start in starts:
        end = start + 1
        while end < len(lines) and lines[end].strip() and not lines[end].startswith("X:"):
            end += 1
        tunes.append((start, lines[start:end]))
    return header, tunes


def _file_defaults(header: list[str]) -> dict[str, str]:
    """M: and L: given before the first tune apply to every tune (ABC 2.1)."""
    fields = (_field_line(_COMMENT_RE.sub("", line)) for line in header)
    return {name: value for name, value in filter(None, fields) if name in "ML"}


def _read_tune(start: int, lines: list[str], source: str, defaults: dict[str, str]) -> AbcTune:
    reader = _TuneReader(defaults)
    number = start + 1
    try:
        for offset, line in enumerate(lines):
            number = start + 1 + offset
            reader.read_line(line)
        reader.finish()
        status, reason, body = "ok", "", tuple(reader.tokens)
    except _Skip as skip:
        status, reason, body = "skipped", f"line {number}: {skip}", ()
    return AbcTune(
        source, reader.x, reader.title, reader.meter, reader.mode_token, body, status, reason, start + 1
    )


def normalise_abc(text: str, source: str = "<string>") -> list[AbcTune]:
    """Normalise every tune of an ABC text; bad tunes come back skipped, never raise."""
    lines = text.splitlines()
    header, tunes = _split_tunes(lines)
    defaults = _file_defaults(header)
    return [_read_tune(start, tune_lines, source, defaults) for start, tune_lines in tunes]


def read_abc_file(path) -> list[AbcTune]:
    data = Path(path).read_bytes()
    try:
        # utf-8-sig drops a byte-order mark, which would hide the first tune's X: line
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # older collections are often Latin-1
    return normalise_abc(text, str(path))


def select_tune(tunes: list[AbcTune], source: str, x: int | None = None, title: str | None = None) -> AbcTune:
    """The one tune of file `source` with X: number `x` and/or `title` (case-insensitive);
    with neither, the file's first tune. It must be ok, and no other tune may match."""
    if not tunes:
        raise AbcError(f"{source}: no tunes in the file")
    wanted = " and ".join(
        filter(None, [f"X:{x}" if x is not None else "", f"title '{title}'" if title is not None else ""])
    )
    if not wanted:
        return _checked(tunes[0], source)
    matches = [t for t in tunes if (x is None or t.x == x) and (title is None or _same_title(t.title, title))]
    if not matches:
        raise AbcError(f"{source}: no tune with {wanted}")
    if len(matches) > 1:
        numbers = ", ".join(f"X:{t.x} (line {t.line})" for t in matches)
        hint = "" if None not in (x, title) else "; x: and title: together may single one out"
        raise AbcError(f"{source}: {len(matches)} tunes with {wanted}: {numbers}{hint}")
    return _checked(matches[0], source)


def _same_title(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def _checked(tune: AbcTune, source: str) -> AbcTune:
    if tune.status != "ok":
        raise AbcError(
            f"{source}: tune X:{tune.x} '{tune.title}' (line {tune.line}) was skipped: {tune.reason}"
        )
    return tune
