import hashlib

import pyarrow.parquet as pq
import pytest

from folkrnn_lens.tokens.abc import AbcError
from folkrnn_lens.tokens.corpus import (
    abc_files,
    build_corpus,
    load_transcription,
    music21_corpus_dir,
    read_corpus_sources,
)
from folkrnn_lens.tokens.format import TokenFormatError, read_token_file

from .conftest import EXCERPT

ABC = """X:1
T:Good Reel
M:4/4
L:1/8
K:G
GABc dBAG|FGAB cAFD:|

X:2
T:Phrygian Oddity
M:4/4
L:1/8
K:Ephr
EFGA BAGF|

X:3
T:Good Jig
M:6/8
L:1/8
K:Ador
A2B c2d|e2d cBA|
"""


def test_build_corpus_keeps_good_tunes_and_tabulates_the_bad_one(tmp_path):
    source = tmp_path / "tunes.abc"
    source.write_text(ABC)
    tokens, table = tmp_path / "out" / "tunes.txt", tmp_path / "out" / "tunes.parquet"
    build_corpus([str(source)], tokens, table)
    tunes = read_token_file(tokens)
    assert [(t.meter, t.mode) for t in tunes] == [("M:4/4", "K:Cmaj"), ("M:6/8", "K:Cdor")]
    assert tunes[0].body[:4] == ("c", "d", "e", "f")  # G major moves up a fourth to C
    frame = pq.read_table(table).to_pandas()
    assert frame["id"].tolist() == [0, 1, 2]
    assert frame["x"].tolist() == [1, 2, 3]
    assert frame["title"].tolist() == ["Good Reel", "Phrygian Oddity", "Good Jig"]
    assert frame["status"].tolist() == ["ok", "skipped", "ok"]
    assert "phr" in frame.loc[1, "reason"].lower()
    assert frame["position"].tolist()[0::2] == [1, 2]
    assert frame["n_tokens"][0] == 2 + len(tunes[0].body)
    assert read_corpus_sources(table) == {str(source): hashlib.sha256(ABC.encode()).hexdigest()}


def test_abc_sources_can_be_folders_and_music21_collections(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.abc").write_text(ABC)
    (tmp_path / "a" / "two.abc").write_text(ABC)
    labels = [label for label, _ in abc_files([str(tmp_path / "a")])]
    assert labels == [f"{tmp_path}/a/one.abc", f"{tmp_path}/a/two.abc"]
    oneills = abc_files(["music21:oneills1850"])
    assert len(oneills) == 39 and oneills[0][0] == "music21:oneills1850/0001-0050.abc"
    assert (music21_corpus_dir() / "ryansMammoth").is_dir()


def test_a_missing_source_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="ABC source 'nowhere.abc' does not exist"):
        abc_files(["nowhere.abc"])


def test_load_transcription_from_abc_by_x_or_title_and_from_tokens(tmp_path, excerpt):
    source = tmp_path / "tunes.abc"
    source.write_text(ABC)
    by_x = load_transcription({"abc": str(source), "x": 3})
    by_title = load_transcription({"abc": str(source), "title": "Good Jig"})
    assert by_x == by_title and by_x.mode == "K:Cdor"
    assert load_transcription({"tokens": str(EXCERPT), "index": 5}) == excerpt[4]
    with pytest.raises(AbcError, match="Phrygian|phr"):
        load_transcription({"abc": str(source), "x": 2})
    with pytest.raises(TokenFormatError, match="asked for tune 40"):
        load_transcription({"tokens": str(EXCERPT), "index": 40})


def test_a_byte_order_mark_loses_no_tune(tmp_path):
    source = tmp_path / "tunes.abc"
    source.write_text(ABC, encoding="utf-8-sig")  # as Windows editors save UTF-8
    tokens, table = tmp_path / "out" / "tunes.txt", tmp_path / "out" / "tunes.parquet"
    build_corpus([str(source)], tokens, table)
    assert pq.read_table(table).column("x").to_pylist() == [1, 2, 3]
    first = load_transcription({"abc": str(source)})  # neither x nor title: the first tune
    assert (first.title, first.tokens) == ("Good Reel", read_token_file(tokens)[0].tokens)


def test_an_empty_abc_file_is_named(tmp_path):
    source = tmp_path / "empty.abc"
    source.write_text("\n\n")
    with pytest.raises(AbcError, match=rf"^{source}: no tunes in the file$"):
        load_transcription({"abc": str(source)}, "empty")


@pytest.mark.parametrize("key, expected", [("abc", "an ABC file"), ("tokens", "a token file")])
def test_a_folder_given_as_the_file_is_named(tmp_path, key, expected):
    message = rf"transcription 'x': {key}: '{tmp_path}' is a folder; expected {expected}"
    with pytest.raises(IsADirectoryError, match=message):
        load_transcription({key: str(tmp_path)}, "x")
