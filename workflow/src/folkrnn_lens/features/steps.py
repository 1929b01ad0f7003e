"""The musical features of every step of a tune, read off its tokens (docs/features.md).

A step reads one token (``<s>``, the meter, the mode, then the body) and predicts the
next. Its features say what it reads and where it is in the music:

- ``input_type``, ``next_type``: the fine type (``FINE_TYPES``) of the token read and of
  the one that came next;
- ``pitch_class`` (0 = C .. 11 = B), ``scale_degree`` (1 = C .. 7 = B: folk-rnn's tunes
  are all in C) and ``octave`` (4 for ABC's ``C``, the octave of middle C) of the
  *current note*: the last note read within the step's event (missing at rests, bar
  lines, the header, and a chord's ``[``). The pitch class follows the mode's key
  signature (``K:Cdor``: B flat and E flat) and the accidentals written earlier in the
  bar on the same letter and octave, as ABC reads them;
- ``onset`` and ``duration``, in eighths (folk-rnn's unit length, L:1/8), of the step's
  *event*: the note, rest or chord it belongs to (a note and its length token, a chord
  from ``[`` to its length after ``]``, a tuplet sign with the note it starts, a broken
  rhythm sign with the note before it). Broken rhythm scales the notes on either side
  (``A > B``: 3/2 and 1/2), a tuplet ``(p`` the next p events by q/p (ABC's defaults:
  ``(3``, three in the time of two), a chord lasts as long as its first note times the
  length after ``]``. Onsets count from the tune's first event;
- ``bar``: the bar index (``bar_indices``: a pickup is bar 0) and ``bar_phase``: where the
  step's event starts within its bar, in [0, 1), from the meter (``M:6/8``: 6 eighths a
  bar). A pickup (a first bar shorter than the meter's) ends at phase 1, so its notes
  have the phases they would have in a whole bar; a bar longer than the meter's (a bar
  line left out) wraps round. A bar line has phase 0 (the next bar starts); the header
  has none (NaN);
- ``next_is_bar``: whether the next token is a bar line;
- ``meter`` and ``mode``: the tune's (``M:6/8``, ``K:Cdor``), the same at every step.

Bars are measured from their first event, so an incomplete bar other than a pickup (the
last bar before a repeat, completed after it) starts again at phase 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from folkrnn_lens.tokens.format import END, START, bar_indices, is_bar, is_note

FINE_TYPES = (
    "pitch",
    "duration",
    "bar",
    "rest",
    "chord",
    "tuplet",
    "broken",
    "meter",
    "mode",
    "start",
    "end",
)
"""The token types of the features (the interventions summarise by coarser ones)."""

KEY_SIGNATURES = {
    "K:Cmaj": {},
    "K:Cmix": {"B": -1},
    "K:Cdor": {"B": -1, "E": -1},
    "K:Cmin": {"B": -1, "E": -1, "A": -1},
}
"""The flats of each of folk-rnn's modes in C."""

COMPOUND_METERS = ("M:6/8", "M:9/8", "M:12/8")

_LENGTH = re.compile(r"(?P<length>[0-9]+|[0-9]*/[0-9]+)(?P<broken>[<>]{0,3})")
_NOTE = re.compile(r"(?P<accidental>\^\^|\^|=|__|_)?(?P<letter>[A-Ga-g])(?P<marks>[,']*)")
_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ALTERATIONS = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_BROKEN = {">": Fraction(1, 2), ">>": Fraction(3, 4), ">>>": Fraction(7, 8)}  # the dot's share
NO_PITCH = (-1, -1, -99)


def fine_type(token: str) -> str:
    """The token's type among FINE_TYPES; a ValueError for a token of no folk-rnn type."""
    if token in (START, END):
        return "start" if token == START else "end"
    if token.startswith(("M:", "K:")):
        return "meter" if token.startswith("M:") else "mode"
    if is_note(token):
        return "pitch"
    if token == "z":
        return "rest"
    if is_bar(token):
        return "bar"
    if token in ("[", "]"):
        return "chord"
    if re.fullmatch(r"\([2-9]", token):
        return "tuplet"
    if re.fullmatch(r"[<>]{1,3}", token):
        return "broken"
    if _LENGTH.fullmatch(token):
        return "duration"
    raise ValueError(f"token {token!r} is not a folk-rnn token")


def bar_eighths(meter: str) -> Fraction:
    """A whole bar of the meter, in eighths (``M:6/8`` -> 6, ``M:3/2`` -> 12)."""
    return Fraction(meter[2:]) * 8


def tuplet_factor(p: int, compound: bool) -> Fraction:
    """ABC's ``(p``: p notes in the time of q; q is 3 for p = 2, 4, 8, 2 for p = 3, 6,
    and for odd p 3 in a compound meter, else 2."""
    q = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}.get(p, 3 if compound else 2)
    return Fraction(q, p)


def written_length(token: str) -> tuple[Fraction, str]:
    """A length token's length in eighths and its broken-rhythm signs (``3/2>``)."""
    match = _LENGTH.fullmatch(token)
    text = match["length"]
    length = Fraction(1, int(text[1:])) if text.startswith("/") else Fraction(text)
    return length, match["broken"]


def broken_factors(signs: str) -> tuple[Fraction, Fraction]:
    """The factors of the notes before and after a broken rhythm (``>``: 3/2, 1/2)."""
    share = _BROKEN[signs.replace("<", ">")]
    longer, shorter = 1 + share, 1 - share
    return (longer, shorter) if signs[0] == ">" else (shorter, longer)


def note_pitch(token: str, signature: dict, accidentals: dict) -> tuple[int, int, int]:
    """(pitch class, scale degree, octave) of a note; a written accidental holds for the
    rest of the bar on its letter and octave (``accidentals``, updated here)."""
    match = _NOTE.fullmatch(token)
    letter = match["letter"].upper()
    octave = (5 if match["letter"].islower() else 4) + match["marks"].count("'") - match["marks"].count(",")
    if match["accidental"] is not None:
        accidentals[letter, octave] = _ALTERATIONS[match["accidental"]]
    midi = (
        12 * (octave + 1) + _SEMITONES[letter] + accidentals.get((letter, octave), signature.get(letter, 0))
    )
    return midi % 12, "CDEFGAB".index(letter) + 1, midi // 12 - 1


@dataclass
class Event:
    """A note, rest or chord: its steps, its written length and what scales it."""

    steps: list[int]
    length: Fraction = Fraction(1)
    factor: Fraction = Fraction(1)
    in_chord: bool = False
    notes: int = 0  # notes read so far (a chord's first note sets its length)
    onset: Fraction = field(default=Fraction(0))

    @property
    def duration(self) -> Fraction:
        return self.length * self.factor


class _Reader:
    """Reads a tune's body token by token into events, and each step's current pitch."""

    def __init__(self, mode: str, compound: bool, n: int):
        self.signature, self.compound = KEY_SIGNATURES[mode], compound
        self.events: list[Event] = []
        self.pitch = np.array([NO_PITCH] * n)
        self.accidentals: dict = {}
        self.current: Event | None = None
        self.pending: list[int] = []  # steps of signs waiting for the next event (a tuplet)
        self.tuplet: tuple[int, Fraction] = (0, Fraction(1))  # events left, factor
        self.next_factor = Fraction(1)  # the second half of a broken rhythm

    def read(self, step: int, token: str) -> None:
        kind = fine_type(token)
        if kind == "bar":
            self.accidentals.clear()
            self.current = None
        elif kind == "tuplet":
            self.tuplet = (int(token[1:]), tuplet_factor(int(token[1:]), self.compound))
            self.pending.append(step)
        elif token == "[":
            self._start(step).in_chord = True
        elif token == "]" and self.current is not None:
            self.current.in_chord = False
            self.current.steps.append(step)
        elif kind in ("pitch", "rest"):
            event = self.current if self.current is not None and self.current.in_chord else self._start(step)
            if event.steps[-1] != step:
                event.steps.append(step)
            event.notes += 1
            if kind == "pitch":
                self.pitch[step] = note_pitch(token, self.signature, self.accidentals)
        elif kind in ("duration", "broken") and self.current is not None:
            self._lengthen(step, token, kind)
        if self.current is not None and step in self.current.steps and kind not in ("pitch", "bar"):
            self.pitch[step] = self.pitch[self.current.steps[-2]] if len(self.current.steps) > 1 else NO_PITCH

    def _start(self, step: int) -> Event:
        event = Event([*self.pending, step], factor=self.next_factor)
        self.pending, self.next_factor = [], Fraction(1)
        left, factor = self.tuplet
        if left:
            event.factor *= factor
            self.tuplet = (left - 1, factor)
        self.events.append(event)
        self.current = event
        return event

    def _lengthen(self, step: int, token: str, kind: str) -> None:
        event = self.current
        event.steps.append(step)
        signs = token
        if kind == "duration":
            length, signs = written_length(token)
            if not event.in_chord or event.notes == 1:  # a chord's first note, or the whole chord
                event.length *= length
        if signs:
            before, after = broken_factors(signs)
            event.factor *= before
            self.next_factor = after


def step_features(tokens: list[str]) -> pd.DataFrame:
    """One row per step of a tune read as ``tokens`` (``<s>``, meter, mode, body: a
    steps table's input tokens), with the features of the module docstring; the token
    after the last is ``</s>``. A ValueError names a token of no folk-rnn type."""
    n, following = len(tokens), [*tokens[1:], END]
    meter = next((t for t in tokens if t.startswith("M:")), None)
    mode = next((t for t in tokens if t.startswith("K:")), None)
    if meter is None or mode not in KEY_SIGNATURES:
        raise ValueError(
            f"a tune needs a meter and one of the modes {list(KEY_SIGNATURES)}, got {meter}, {mode}"
        )
    reader = _Reader(mode, meter in COMPOUND_METERS, n)
    for step, token in enumerate(tokens):
        if fine_type(token) not in ("start", "meter", "mode"):
            reader.read(step, token)
    onset, duration = np.full(n, np.nan), np.full(n, np.nan)
    time = Fraction(0)
    for event in reader.events:
        event.onset = time
        onset[event.steps], duration[event.steps] = float(time), float(event.duration)
        time += event.duration
    bars = np.asarray(bar_indices(tokens), np.int32)
    pitch = reader.pitch
    return pd.DataFrame(
        {
            "step": np.arange(n, dtype=np.int32),
            "input_token": tokens,
            "next_token": following,
            "input_type": [fine_type(t) for t in tokens],
            "next_type": [fine_type(t) for t in following],
            "pitch_class": _nullable(pitch[:, 0], pitch[:, 0] >= 0),
            "scale_degree": _nullable(pitch[:, 1], pitch[:, 1] > 0),
            "octave": _nullable(pitch[:, 2], pitch[:, 0] >= 0),
            "onset": onset,
            "duration": duration,
            "bar": bars,
            "bar_phase": bar_phases(tokens, reader.events, bars, bar_eighths(meter)),
            "next_is_bar": np.array([is_bar(t) for t in following]),
            "meter": meter,
            "mode": mode,
        }
    )


def _nullable(values: np.ndarray, present: np.ndarray):
    """A nullable Int8 column: missing where not ``present``."""
    return pd.array([int(v) if p else None for v, p in zip(values, present)], dtype="Int8")


def bar_phases(tokens: list[str], events: list[Event], bars: np.ndarray, whole: Fraction) -> np.ndarray:
    """Each step's bar phase: its event's onset within its bar over the meter's bar,
    wrapped into [0, 1), a pickup ending at 1; 0 at bar lines; NaN in the header."""
    phase = np.full(len(tokens), np.nan)
    first: dict[int, Event] = {}
    last: dict[int, Event] = {}
    for event in events:
        bar = int(bars[event.steps[-1]])
        first.setdefault(bar, event)
        last[bar] = event
    shift = {bar: Fraction(0) for bar in first}
    if 0 in first and 1 in first:
        filled = last[0].onset + last[0].duration - first[0].onset
        shift[0] = max(whole - filled, Fraction(0))  # a pickup ends where bar 1 begins
    for event in events:
        bar = int(bars[event.steps[-1]])
        within = event.onset - first[bar].onset + shift[bar]
        phase[event.steps] = float((within % whole) / whole)
    phase[[step for step, token in enumerate(tokens) if is_bar(token)]] = 0.0
    return phase
