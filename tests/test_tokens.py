import pytest
from hypothesis import given
from hypothesis import strategies as st

from folkrnn_lens.tokens.format import (
    TokenFormatError,
    Transcription,
    bar_indices,
    format_token_text,
    is_tune_token,
    parse_token_text,
    read_token_file,
    select_transcription,
)

from .conftest import EXCERPT


def test_every_excerpt_tune_round_trips_unchanged(excerpt):
    text = EXCERPT.read_text()
    assert len(excerpt) == 12
    assert format_token_text(excerpt) == text
    for tune in excerpt:
        again = parse_token_text(tune.to_text())
        assert again == [tune]


def test_excerpt_tunes_have_meter_mode_and_body(excerpt):
    first = excerpt[0]
    assert (first.meter, first.mode) == ("M:9/8", "K:Cmaj")
    assert first.body[:4] == ("G", "E", "E", "E")
    assert first.tokens[:3] == ["M:9/8", "K:Cmaj", "G"]


def test_bar_indices_count_closed_bars_and_skip_empty_ones():
    tokens = ["<s>", "M:6/8", "K:Cmaj", "|:", "c", "|", "f", "2", ":|", "|2", "g", "|"]
    assert bar_indices(tokens) == [0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_the_double_repeat_is_a_bar_line():
    assert bar_indices(["A", "B", "::", "c", "d", "|", "e"]) == [0, 0, 0, 1, 1, 1, 2]


def test_bar_indices_of_a_tune_without_pickup():
    assert bar_indices(["G", "E", "|", "A", "B", "|", "c"]) == [0, 0, 0, 1, 1, 1, 2]


@pytest.mark.parametrize(
    "text, message",
    [
        ("M:6/8\n", "expected a meter line and a mode line"),
        ("6/8\nK:Cmaj\nA B\n", "expected a meter like 'M:6/8'"),
        ("M:6/8\nK:Dmaj\nA B\n", "expected a mode in"),
        ("M:6/8\nK:Cmaj\nA </s> B\n", "tune at line 5: line 7: body token 2 '</s>'"),
    ],
)
def test_bad_token_files_name_the_file_line_and_token(text, message):
    with pytest.raises(TokenFormatError, match="tunes.txt") as error:
        parse_token_text("M:4/4\nK:Cmaj\nA B |\n\n" + text, "tunes.txt")
    assert message in str(error.value)
    assert "line 5" in str(error.value)


def test_select_transcription_is_one_based_and_checks_range(excerpt):
    assert select_transcription(excerpt, 2, "x") == excerpt[1]
    with pytest.raises(TokenFormatError, match="asked for tune 13, but the file holds 12"):
        select_transcription(excerpt, 13, "x")


def test_blank_lines_between_tunes_may_repeat():
    tunes = parse_token_text("\n\nM:4/4\nK:Cmaj\nA B\n\n\n\nM:3/4\nK:Cdor\nc d\n")
    assert tunes == [
        Transcription("M:4/4", "K:Cmaj", ("A", "B")),
        Transcription("M:3/4", "K:Cdor", ("c", "d")),
    ]


@given(st.text())
def test_parsing_arbitrary_text_raises_only_the_declared_error(text):
    try:
        tunes = parse_token_text(text)
    except TokenFormatError:
        return
    assert parse_token_text(format_token_text(tunes)) == tunes


@pytest.mark.parametrize(
    "text, message",
    [
        ("M:6/8\nK:Cmaj\n", "tune at line 5: the tune has no body (no notes)"),
        ("M:6/8\nK:Cmaj\n|: z 2 :|\n", "tune at line 5: the tune's body has no notes"),
    ],
)
def test_a_tune_without_notes_is_refused_as_the_abc_path_refuses_it(text, message):
    with pytest.raises(TokenFormatError, match="tunes.txt") as error:
        parse_token_text("M:4/4\nK:Cmaj\nA B |\n\n" + text, "tunes.txt")
    assert message in str(error.value)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_token_files_may_start_with_a_byte_order_mark(tmp_path, encoding):
    path = tmp_path / "tunes.txt"
    path.write_text("M:4/4\nK:Cmaj\nA B |\n", encoding=encoding)
    assert read_token_file(path) == [Transcription("M:4/4", "K:Cmaj", ("A", "B", "|"))]


def test_a_token_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "tunes.txt"
    path.write_bytes(b"M:4/4\nK:Cmaj\nA \xff |\n")
    with pytest.raises(TokenFormatError, match=r"tunes\.txt: not a UTF-8 text file"):
        read_token_file(path)


def test_tune_tokens_are_those_of_the_format(excerpt):
    assert all(is_tune_token(token) for tune in excerpt for token in tune.tokens)
    for token in ["Q", "<s>", "</s>", "M:4/4 K:Cmaj", "K:Dmaj", "(1", "^^^A", "A2", "||", " A"]:
        assert not is_tune_token(token), token
