import copy
from pathlib import Path

import pytest
import yaml

from folkrnn_lens.config import ConfigError, check_config, check_references

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_the_shipped_config_is_valid(config):
    check_config(config, SCHEMA)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(recrod={}), r"config error at \(top level\): Additional properties .*'recrod'"),
        (lambda c: c["record"].update(layers=[0]), r"record -> layers -> 0: 0 is less than the minimum of 1"),
        (
            lambda c: c["record"].update(quantities=["h", "z"]),
            r"record -> quantities -> 1: 'z' is not one of",
        ),
        (lambda c: c["model"].update(file="weights.bin"), r"model -> file: 'weights.bin' does not match"),
        (lambda c: c.update(device="tpu"), r"device: 'tpu' is not one of \['cpu', 'cuda'\]"),
        (
            lambda c: c["transcriptions"].update(bad={"abc": "a.abc", "tokens": "t.txt"}),
            r"transcriptions -> bad: expected exactly one of the keys \['abc', 'tokens', 'generate'\]",
        ),
        (
            lambda c: c["transcriptions"]["generated_seed_1"]["generate"].update(temperature=0),
            r"generated_seed_1 -> generate -> temperature: 0 is less than or equal to the minimum of 0",
        ),
        (
            lambda c: c["transcriptions"].update(bad={"abc": "a.abc", "index": 1}),
            r"transcriptions -> bad: .*'index' was unexpected.*allowed keys: \['abc', 'title', 'x'\]",
        ),
        (
            lambda c: c["transcriptions"].update(bad={"tokens": "t.txt", "index": 0}),
            r"transcriptions -> bad -> index: 0 is less than the minimum of 1",
        ),
        (
            lambda c: c["transcriptions"].update({"bad name": {"tokens": "t.txt"}}),
            r"'bad name' does not match",
        ),
    ],
)
def test_a_bad_key_or_value_is_named_in_the_message(config, change, message):
    bad = copy.deepcopy(config)
    change(bad)
    with pytest.raises(ConfigError, match=message):
        check_config(bad, SCHEMA)


def test_one_threshold_of_a_band_gets_the_other_from_the_schema(config):
    from snakemake.utils import validate  # as the workflow does: filling defaults

    config["analysis"] = {"bands": {"distance": {"low": 0.05}}}
    validate(config, str(SCHEMA))
    assert config["analysis"]["bands"]["distance"] == {"low": 0.05, "high": 1.98}
    assert config["analysis"]["bands"]["cosine"] == {"low": 0.02, "high": 0.98}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["model"].update(untrained={"vocabulary_corpora": ["nope"]}),
            r"model -> untrained -> vocabulary_corpora: 'nope' is not one of the configured corpora",
        ),
        (
            lambda c: c["training"]["folkrnn_v2_music21"].update(corpus="nope"),
            r"training -> folkrnn_v2_music21 -> corpus: 'nope'",
        ),
        (lambda c: c["probes"]["heathy_hill_in_major"].update(of="nope"), r"-> of: 'nope' is not one of"),
        (
            lambda c: c["corpus_analysis"]["music21_sample"]["tunes"].update(corpus="nope"),
            r"music21_sample -> tunes -> corpus: 'nope'",
        ),
        (lambda c: c.update(corpus_comparisons=[["music21_sample", "nope"]]), r"corpus_comparisons: 'nope'"),
    ],
)
def test_a_name_that_points_nowhere_is_named(config, change, message):
    check_references(config)  # the shipped config's names all point somewhere
    bad = copy.deepcopy(config)
    change(bad)
    with pytest.raises(ConfigError, match=message):
        check_references(bad)


def test_the_conda_environment_keeps_in_step_with_pyproject():
    """envs/folkrnn-lens.yaml (snakemake --use-conda) pins what pyproject.toml does,
    under conda-forge's names; snakemake itself runs the jobs, so it is not in it."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((ROOT / "envs" / "folkrnn-lens.yaml").read_text())["dependencies"]
    conda_names = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
    wanted = set()
    for requirement in project:
        name, bound = re.fullmatch(r"([a-z0-9_-]+)(.*)", requirement.strip()).groups()
        if name != "snakemake":
            wanted.add(conda_names.get(name, name) + bound)
    assert wanted <= set(conda), sorted(wanted - set(conda))
