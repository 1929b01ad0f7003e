"""Musical features of every step against hand-worked tunes: pickups, broken rhythm,
accidentals and key signatures, tuplets, chords, repeats, endings and '::'."""

import numpy as np
import pandas as pd
import pytest

from folkrnn_lens.features.steps import FINE_TYPES, fine_type, step_features

NA = None


def features(text: str) -> pd.DataFrame:
    return step_features(["<s>", *text.split()])


def column(frame: pd.DataFrame, name: str) -> list:
    return [None if pd.isna(v) else v for v in frame[name]]


def test_a_pickup_ends_at_phase_one_and_bars_count_from_it():
    f = features("M:6/8 K:Cmaj A | B 2 c d 2 e | f 3 e 3 |")
    #             <s> M   K    A    |  B  2  c    d    2    e    |  f  3  e    3   |
    assert column(f, "onset") == [NA, NA, NA, 0, NA, 1, 1, 3, 4, 4, 6, NA, 7, 7, 10, 10, NA]
    assert column(f, "duration") == [NA, NA, NA, 1, NA, 2, 2, 1, 2, 2, 1, NA, 3, 3, 3, 3, NA]
    phase = [NA, NA, NA, 5 / 6, 0, 0, 0, 2 / 6, 3 / 6, 3 / 6, 5 / 6, 0, 0, 0, 0.5, 0.5, 0]
    np.testing.assert_allclose(f["bar_phase"].to_numpy(), np.array(phase, float))
    assert f["bar"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert column(f, "pitch_class") == [NA, NA, NA, 9, NA, 11, 11, 0, 2, 2, 4, NA, 5, 5, 4, 4, NA]
    assert column(f, "scale_degree") == [NA, NA, NA, 6, NA, 7, 7, 1, 2, 2, 3, NA, 4, 4, 3, 3, NA]
    assert column(f, "octave") == [NA, NA, NA, 4, NA, 4, 4, 5, 5, 5, 5, NA, 5, 5, 5, 5, NA]
    assert f["next_is_bar"].tolist() == [False] * 3 + [True] + [False] * 6 + [True] + [False] * 4 + [
        True,
        False,
    ]
    assert f["input_type"].tolist()[:6] == ["start", "meter", "mode", "pitch", "bar", "pitch"]
    assert f["next_type"].tolist()[-2:] == ["bar", "end"]


def test_broken_rhythm_key_signature_and_accidentals_through_the_bar():
    f = features("M:4/4 K:Cdor B > c ^F F G 2 A B | F =B B, e |")
    #                          B  >  c    ^F F  G  2  A  B  |  F  =B  B,  e  |
    body = slice(3, None)
    assert column(f, "onset")[body] == [0, 0, 1.5, 2, 3, 4, 4, 6, 7, NA, 8, 9, 10, 11, NA]
    assert column(f, "duration")[body] == [1.5, 1.5, 0.5, 1, 1, 2, 2, 1, 1, NA, 1, 1, 1, 1, NA]
    # B flat and E flat by the dorian signature; ^F holds through its bar; =B for B only
    assert column(f, "pitch_class")[body] == [10, 10, 0, 6, 6, 7, 7, 9, 10, NA, 5, 11, 10, 3, NA]
    assert column(f, "octave")[body] == [4, 4, 5, 4, 4, 4, 4, 4, 4, NA, 4, 4, 3, 5, NA]
    phase = [0, 0, 1.5 / 8, 2 / 8, 3 / 8, 4 / 8, 4 / 8, 6 / 8, 7 / 8, 0, 0, 1 / 8, 2 / 8, 3 / 8, 0]
    np.testing.assert_allclose(f["bar_phase"].to_numpy()[body], phase)  # a whole first bar: no pickup
    assert f["input_type"][4] == "broken"


def test_a_tuplet_and_chords_are_events_of_their_own_length():
    f = features("M:2/4 K:Cmaj (3 c d e [ C E ] 2 | [ E 2 G 2 ] z 2 |")
    #                          (3 c d   e    [  C  E  ]  2  |  [  E  2  G  2  ]  z  2  |
    body = slice(3, None)
    third = 2 / 3
    onsets = [0, 0, third, 2 * third, 2, 2, 2, 2, 2, NA, 4, 4, 4, 4, 4, 4, 6, 6, NA]
    np.testing.assert_allclose(np.array(column(f, "onset")[body], float), np.array(onsets, float))
    durations = [third, third, third, third, 2, 2, 2, 2, 2, NA, 2, 2, 2, 2, 2, 2, 2, 2, NA]
    np.testing.assert_allclose(np.array(column(f, "duration")[body], float), np.array(durations, float))
    # the current note: none at '(3' and '[', the last one read within a chord
    assert column(f, "pitch_class")[body] == [NA, 0, 2, 4, NA, 0, 4, 4, 4, NA, NA, 4, 4, 7, 7, 7, NA, NA, NA]
    phase = [0, 0, 1 / 6, 1 / 3, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0]
    np.testing.assert_allclose(f["bar_phase"].to_numpy()[body], phase)
    assert f["input_type"][3] == "tuplet" and f["input_type"][7] == "chord"


def test_repeats_endings_and_the_double_repeat():
    f = features("M:3/4 K:Cmaj |: C 2 D 2 E 2 :: F 6 |1 G 6 :| |2 A 6 |")
    #                          |: C  2  D  2  E  2  :: F  6  |1 G  6  :| |2 A  6  |
    assert f["bar"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    body = slice(3, None)
    assert column(f, "onset")[body] == [NA, 0, 0, 2, 2, 4, 4, NA, 6, 6, NA, 12, 12, NA, NA, 18, 18, NA]
    phase = [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(f["bar_phase"].to_numpy()[body], phase)
    ends = [2, 9, 12, 15, 16, 19]  # the steps before a bar line
    assert np.flatnonzero(f["next_is_bar"]).tolist() == ends
    assert [f["input_type"][k] for k in (3, 10, 13, 16, 17)] == ["bar"] * 5


def test_a_mixolydian_tune_with_a_combined_length_and_an_overfull_bar():
    f = features("M:6/8 K:Cmix B 2< c c' C, 5/2 | d 6 e 6 |")
    #                          B  2< c    c'   C,   5/2  | d  6  e   6  |
    body = slice(3, None)
    assert column(f, "onset")[body] == [0, 0, 1, 2.5, 3.5, 3.5, NA, 6, 6, 12, 12, NA]
    assert column(f, "duration")[body] == [1, 1, 1.5, 1, 2.5, 2.5, NA, 6, 6, 6, 6, NA]
    assert column(f, "pitch_class")[body] == [10, 10, 0, 0, 0, 0, NA, 2, 2, 4, 4, NA]
    assert column(f, "octave")[body] == [4, 4, 5, 6, 3, 3, NA, 5, 5, 5, 5, NA]
    phase = [0, 0, 1 / 6, 2.5 / 6, 3.5 / 6, 3.5 / 6, 0, 0, 0, 0, 0, 0]  # e wraps: a bar line left out
    np.testing.assert_allclose(f["bar_phase"].to_numpy()[body], phase)


def test_every_token_type_and_a_token_of_none():
    tokens = ["A", "2", "|", "z", "[", "(3", ">", "M:6/8", "K:Cmaj", "<s>", "</s>"]
    assert sorted({fine_type(t) for t in tokens}) == sorted(FINE_TYPES)
    with pytest.raises(ValueError, match="token 'Q' is not a folk-rnn token"):
        features("M:4/4 K:Cmaj A Q |")


def test_every_tune_of_the_excerpt_reads_with_phases_in_the_unit_interval(excerpt):
    for tune in excerpt:
        f = step_features(["<s>", *tune.tokens])
        phase = f["bar_phase"].dropna()
        assert len(phase) > len(f) // 2 and phase.between(0, 1, inclusive="left").all()
        onsets = f["onset"].dropna().to_numpy()
        assert (np.diff(onsets) >= 0).all() and (f["duration"].dropna() > 0).all()
