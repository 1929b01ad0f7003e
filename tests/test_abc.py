"""Tests for folkrnn_lens.tokens.abc: ABC -> folk-rnn v2 tokens (expectations computed by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from folkrnn_lens.tokens.abc import (
    AbcError,
    AbcTune,
    normalise_abc,
    read_abc_file,
    select_tune,
)


def tune(body: str, key: str = "C", meter: str = "4/4", unit: str | None = "1/8") -> AbcTune:
    """Normalise one tune with the given header; it must come out ok."""
    length = f"L:{unit}\n" if unit else ""
    [result] = normalise_abc(f"X:1\nT:Test\nM:{meter}\n{length}K:{key}\n{body}\n")
    assert result.status == "ok", result.reason
    return result


def body(text: str, **header) -> str:
    return " ".join(tune(text, **header).body)


def skipped(text: str) -> AbcTune:
    [result] = normalise_abc(text)
    assert result.status == "skipped"
    assert result.body == ()
    return result


# ---------------------------------------------------------------- transposition


@pytest.mark.parametrize(
    "key, abc, mode, expected",
    [
        # G major: up 3 letters (G -> c)
        ("G", "GAB cde|fga bc'd'|", "K:Cmaj", "c d e f g a | b c' d' e' f' g' |"),
        # D dorian: down 1 letter; ^F is the major third (E natural in C dorian)
        ("Ddor", "DEF GAB|c2 ^F =B _B|", "K:Cdor", "C D E F G A | B 2 =E =A _A |"),
        # A minor: up 2 letters; the raised seventh ^G becomes =B (Bb in the signature)
        ("Am", "A,B,C DEF|^GAB|", "K:Cmin", "C D E F G A | =B c d |"),
        # E minor: down 2 letters; ^d -> =B, =F (below the F# of the signature) -> _D
        ("Em", "EFG ^de =F|", "K:Cmin", "C D E =B c _D |"),
        # B flat major: up 1 letter; =e -> ^f, _B (= signature) -> =c
        ("Bb", "Bcd efg|=e_B|", "K:Cmaj", "c d e f g a | ^f =c |"),
        # F sharp minor: down 3 letters; ^e (raised seventh) -> =B
        ("F#m", "FGA Bce|^e f|", "K:Cmin", "C D E F G B | =B c |"),
        # A mixolydian: up 2 letters; =c (minor third) -> _e
        ("Amix", "AB=c G|", "K:Cmix", "c d _e B |"),
        # C major: nothing moves, double accidentals survive
        ("C", "^^F __B c'' C,,|", "K:Cmaj", "^^F __B c'' C,, |"),
    ],
)
def test_transposes_each_mode_to_c(key, abc, mode, expected):
    result = tune(abc, key=key)
    assert result.mode == mode
    assert " ".join(result.body) == expected


def test_explicit_accidentals_are_relative_to_the_key_signature():
    # in D major =c is a semitone below the signature's c#: Bb in C major;
    # ^c only repeats the signature, so it must cancel the earlier flat: =B
    assert body("=c ^c =C c|", key="D") == "_B =B _B, B |"
    # G major: ^^F is one sharp above the signature's F# -> ^B
    assert body("^^F|", key="G") == "^B |"


def test_accidental_that_cannot_be_written_in_c_is_skipped():
    result = skipped("X:1\nM:4/4\nK:D\n__F|\n")
    assert "__F" in result.reason and result.reason.startswith("line 4:")


@pytest.mark.parametrize(
    "key, mode",
    [
        ("A Minor", "K:Cmin"),
        ("Edorian", "K:Cdor"),
        ("Gion", "K:Cmaj"),
        ("Daeo", "K:Cmin"),
        ("Dmix % comment", "K:Cmix"),
        ("Bbmaj", "K:Cmaj"),
        ("G clef=treble", "K:Cmaj"),
    ],
)
def test_mode_spellings(key, mode):
    assert tune("C|", key=key).mode == mode


@pytest.mark.parametrize(
    "key, reason",
    [
        ("Glyd", "unsupported mode 'Glyd'"),
        ("Bphr", "unsupported mode 'Bphr'"),
        ("Aloc", "unsupported mode 'Aloc'"),
        ("HP", "unsupported key 'HP'"),
        ("none", "unsupported key 'none'"),
        ("Dmix =c", "explicit accidentals"),
    ],
)
def test_unsupported_keys_are_skipped_with_a_reason(key, reason):
    result = skipped(f"X:3\nT:Odd\nM:4/4\nK:{key}\nABc|\n")
    assert reason in result.reason
    assert result.reason.startswith("line 4: ")
    assert (result.x, result.title, result.meter, result.mode) == (3, "Odd", "M:4/4", None)


# ---------------------------------------------------------------- meter and durations


def test_meter_tokens():
    assert tune("C|", meter="C").meter == "M:4/4"
    assert tune("C|", meter="C|").meter == "M:2/2"
    assert tune("C|", meter="6/8").meter == "M:6/8"


def test_durations_with_l_1_16():
    assert body("C2 D E4 F/ G3|", meter="2/4", unit="1/16") == "C D /2 E 2 F /4 G 3/2 |"


def test_durations_with_l_1_4():
    assert body("C D/ E// F3/2 G3/|", meter="3/4", unit="1/4") == "C 2 D E /2 F 3 G 3 |"


def test_durations_with_l_1_8():
    assert body("A2 A3/2 A/ A/4 A3/4 A|", meter="4/4") == "A 2 A 3/2 A /2 A /4 A 3/4 A |"


def test_default_unit_length_follows_the_meter():
    assert body("C2 D|", meter="2/4", unit=None) == "C D /2 |"  # 2/4 < 3/4: L:1/16
    assert body("C2 D|", meter="3/4", unit=None) == "C 2 D |"  # 3/4: L:1/8


def test_inline_unit_length_field():
    assert body("A B [L:1/16] A B [L:1/8] c|") == "A B A /2 B /2 c |"


def test_body_unit_length_field_line():
    assert body("A B|\nL:1/4\nA B|") == "A B | A 2 B 2 |"


def test_rests():
    assert body("z2 x A z/|") == "z 2 z A z /2 |"


# ---------------------------------------------------------------- rhythm, chords, bars


def test_broken_rhythm():
    assert body("A>B c<d e>>f g<<a|") == "A > B c < d e >> f g << a |"


def test_tuplets_are_normalised():
    assert body("(3ABc (3:2:3def (3::efg (2AB|") == "(3 A B c (3 d e f (3 e f g (2 A B |"


def test_tuplet_with_other_note_count_is_skipped():
    assert "'(3:2:2'" in skipped("X:1\nM:4/4\nK:C\n(3:2:2A2B|\n").reason


def test_chords_with_durations():
    assert body("[CEG]2 [C2E2] [ce]/ [G,B,]|") == "[ C E G ] 2 [ C 2 E 2 ] [ c e ] /2 [ G, B, ] |"


def test_bar_lines_repeats_and_endings():
    abc = "|: A :|: B :: c |1 d :|2 e || f |] g [| a :|[2 b |[1 c ||: d :|| e :|] f [|: g |"
    assert body(abc) == ("|: A :: B :: c |1 d :| |2 e | f | g | a :| |2 b |1 c |: d :| e :| f |: g |")


def test_endings_after_a_separate_bar_line():
    assert body("A :| [2 B | [1 c|") == "A :| |2 B |1 c |"


def test_adjacent_bar_lines_across_lines_are_one():
    assert body("A B |\n| c d |\n|: e f :|\n| g|") == "A B | c d |: e f :| g |"


def test_decorations_chord_symbols_grace_notes_slurs_ties_dropped():
    abc = '!trill!A +fermata+B ~c .d Hd "Am"e {ag}f {/g}(ga) b-b uA vB T c kd|'
    assert body(abc) == "A B c d d e f g a b b A B c d |"


def test_line_continuation_joins_lines():
    # "|" + continuation + ":" is the repeat sign "|:"
    assert body("A B |\\\n: c d :|") == "A B |: c d :|"


def test_comments_lyrics_and_parts_are_dropped():
    abc = "% comment\nP:A\nA B % trailing\n%%MIDI program 1\nc d|\nw: la la la la\nP:B\ne f|\nW: words"
    assert body(abc) == "A B c d | e f |"


def test_same_key_again_is_accepted():
    assert body("A|\nK:G\nB|[K:G]c|", key="G") == "d | e | f |"


# ---------------------------------------------------------------- skipped tunes


@pytest.mark.parametrize(
    "abc, reason",
    [
        ("X:1\nM:4/4\nK:C\nAB|\nK:D\nAB|\n", "line 5: key change to 'K:D'"),
        ("X:1\nM:4/4\nK:C\nAB|[K:Am]AB|\n", "line 4: key change to 'K:Am'"),
        ("X:1\nM:4/4\nK:C\nAB|\nM:3/4\nAB|\n", "line 5: meter change to 'M:3/4'"),
        ("X:1\nM:4/4\nK:C\nAB|Z4|\n", "multi-measure rest 'Z4'"),
        ("X:1\nM:4/4\nK:C\nV:1\nAB|\n", "voices are not supported"),
        ("X:1\nM:4/4\nK:C\nA&B|\n", "voice overlay"),
        ("X:1\nM:4/4\nK:C\n|z4|\n", "no notes"),
        ("X:1\nT:No key\nM:4/4\n", "no K: field"),
        ("X:1\nK:C\nABC|\n", "no M: field"),
        ("X:1\nM:4/4\nK:C\nA#B|\n", "unexpected character '#'"),
        ("X:1\nM:4/4\nK:C\nA B {ag|\n", "unterminated grace notes"),
    ],
)
def test_tunes_that_cannot_be_normalised_are_skipped(abc, reason):
    assert reason in skipped(abc).reason


# ---------------------------------------------------------------- files and selection

COLLECTION = """% a collection
X:7
T:First Jig
M:6/8
K:D
ABc def|

X:8
T:Lydian Air
M:3/4
K:Flyd
FGA|

X:9
T:Second Reel
T:alternative title
M:C|
K:Ador
ABcd|
"""


def test_multiple_tunes_per_file_with_line_numbers():
    tunes = normalise_abc(COLLECTION, source="set.abc")
    assert [(t.x, t.title, t.status, t.line) for t in tunes] == [
        (7, "First Jig", "ok", 2),
        (8, "Lydian Air", "skipped", 8),
        (9, "Second Reel", "ok", 14),
    ]
    assert tunes[0].body == ("G", "A", "B", "c", "d", "e", "|")
    assert tunes[1].reason == "line 11: unsupported mode 'Flyd'"
    assert (tunes[2].meter, tunes[2].mode) == ("M:2/2", "K:Cdor")
    assert all(t.source == "set.abc" for t in tunes)


def test_select_tune_by_x_and_title():
    tunes = normalise_abc(COLLECTION, source="set.abc")
    assert select_tune(tunes, "set.abc", x=9).title == "Second Reel"
    assert select_tune(tunes, "set.abc", title="first jig").x == 7
    assert select_tune(tunes, "set.abc", x=7, title="First Jig").x == 7
    assert select_tune(tunes, "set.abc").x == 7  # neither: the file's first tune (docs/configuration.md)


def test_select_tune_errors_name_file_and_tune():
    tunes = normalise_abc(COLLECTION, source="set.abc")
    with pytest.raises(AbcError, match=r"set\.abc: no tune with X:99"):
        select_tune(tunes, "set.abc", x=99)
    with pytest.raises(AbcError, match=r"set\.abc: no tune with title 'Nope'"):
        select_tune(tunes, "set.abc", title="Nope")
    with pytest.raises(AbcError, match=r"set\.abc: tune X:8 'Lydian Air'.*unsupported mode 'Flyd'"):
        select_tune(tunes, "set.abc", x=8)


@pytest.mark.parametrize("x", [None, 1])
def test_a_file_without_tunes_is_named(x):
    with pytest.raises(AbcError, match=r"^empty\.abc: no tunes in the file$"):
        select_tune(normalise_abc("", source="empty.abc"), "empty.abc", x=x)


TWINS = """X:1
T:The Twin
M:4/4
K:G
GABc|

X:2
T:Other
M:4/4
K:G
dBAG|

X:3
T:the twin
M:6/8
K:D
DEF|
"""


def test_a_title_of_two_tunes_is_refused_naming_both():
    tunes = normalise_abc(TWINS, source="twins.abc")
    with pytest.raises(AbcError, match=r"twins\.abc: 2 tunes with title 'The Twin': X:1 \(line 1\), X:3"):
        select_tune(tunes, "twins.abc", title="The Twin")
    assert select_tune(tunes, "twins.abc", x=3, title="The Twin").meter == "M:6/8"


def test_an_x_number_of_two_tunes_is_refused_unless_the_title_singles_one_out():
    tunes = normalise_abc(TWINS.replace("X:2", "X:1"), source="twins.abc")
    with pytest.raises(AbcError, match=r"2 tunes with X:1: X:1 \(line 1\), X:1 \(line 7\)"):
        select_tune(tunes, "twins.abc", x=1)
    assert select_tune(tunes, "twins.abc", x=1, title="Other").line == 7


def test_read_abc_file(tmp_path):
    path = tmp_path / "set.abc"
    path.write_text(COLLECTION, encoding="utf-8")
    tunes = read_abc_file(path)
    assert [t.x for t in tunes] == [7, 8, 9]
    assert tunes[0].source == str(path)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1"])
def test_read_abc_file_accepts_utf8_with_or_without_bom_and_latin1(tmp_path, encoding):
    path = tmp_path / "set.abc"
    text = COLLECTION.removeprefix("% a collection\n").replace("First Jig", "Fírst Jig")
    path.write_bytes(text.encode(encoding))  # utf-8-sig: the X: line comes after the mark
    tunes = read_abc_file(path)
    assert [t.x for t in tunes] == [7, 8, 9]
    assert select_tune(tunes, str(path)).title == "Fírst Jig"


def test_file_header_defaults_apply_to_every_tune():
    tunes = normalise_abc("L:1/16\n\nX:1\nM:4/4\nK:C\nA2B|\n")
    assert tunes[0].body == ("A", "B", "/2", "|")


# ---------------------------------------------------------------- robustness

ABC_ALPHABET = "ABCDEFGabcdefgzxZ^_=,'/<>()[]{}|:!+\"~.-123468 \n\\%HKLMTuvw&#"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text):
    for result in normalise_abc(text):
        assert result.status in ("ok", "skipped")
        assert (result.status == "ok") == (result.reason == "")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["K:G", "K:Am", "K:Bbdor", "K:F#mix", "K:C#m"]),
    st.text(alphabet=ABC_ALPHABET, max_size=200),
)
def test_never_raises_on_abc_like_bodies(key, text):
    for result in normalise_abc(f"X:1\nM:6/8\nL:1/8\n{key}\n{text}\n"):
        assert result.status in ("ok", "skipped")
        if result.status == "ok":
            assert result.body and all(" " not in token for token in result.body)


def oneill_file(name: str) -> Path:
    music21 = pytest.importorskip("music21")
    path = Path(music21.__file__).parent / "corpus" / "oneills1850" / name
    if not path.exists():
        pytest.skip("music21 corpus not installed")
    return path


def test_oneill_file_mostly_converts():
    tunes = read_abc_file(oneill_file("0051-0100.abc"))
    assert len(tunes) == 50
    assert sum(t.status == "ok" for t in tunes) >= 0.9 * len(tunes)


def test_oneill_tune_converted_as_checked_by_hand():
    # X:1 The Enchanted Valley, K:Gm, L:1/16: "G3-A (Bcd=e) | f4 (g2dB) |"
    first = select_tune(read_abc_file(oneill_file("0001-0050.abc")), "0001-0050.abc", x=1)
    assert (first.meter, first.mode, first.line) == ("M:2/4", "K:Cmin", 2)
    assert " ".join(first.body[:21]) == "c 3/2 d /2 e /2 f /2 g /2 =a /2 | b 2 c' g /2 e /2 |"
