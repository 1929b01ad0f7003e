import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from folkrnn_lens.config import ConfigError, check_config, check_feasible, check_references
from folkrnn_lens.model.checkpoint import save_checkpoint

from .conftest import small_model

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
            r"transcriptions -> bad: .*'index' was unexpected"
            r".*allowed keys: \['abc', 'title', 'window', 'x'\]",
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
        (
            lambda c: c["interventions"].update(
                patching={"pairs": {"p": {"clean": "nope", "corrupted": "x"}}}
            ),
            r"patching -> pairs -> p -> clean: 'nope' is not one of the configured transcriptions",
        ),
        (
            lambda c: c["interventions"].update(ablation={"value": "mean", "corpus_analysis": "nope"}),
            r"ablation -> corpus_analysis: 'nope' is not one of the configured corpus analyses",
        ),
    ],
)
def test_a_name_that_points_nowhere_is_named(config, change, message):
    check_references(config)  # the shipped config's names all point somewhere
    bad = copy.deepcopy(config)
    change(bad)
    with pytest.raises(ConfigError, match=message):
        check_references(bad)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c, v: c["transcriptions"]["generated_seed_1"]["generate"].update(temperature=v),
            r"at transcriptions -> generated_seed_1 -> generate -> temperature: {} is not a finite number",
        ),
        (
            lambda c, v: c["analysis"].update(bands={"distance": {"low": v}}),
            r"at analysis -> bands -> distance -> low: {} is not a finite number",
        ),
        (
            lambda c, v: c["resemblance"].update(alpha=v),
            r"at resemblance -> alpha: {} is not a finite number",
        ),
        (
            lambda c, v: c["corpus_analysis"]["generated_50"]["tunes"]["generate"].update(temperature=v),
            r"at corpus_analysis -> generated_50 -> tunes -> generate -> temperature: {} is not",
        ),
    ],
)
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_number_that_is_not_finite_is_named(config, change, message, value):
    change(config, yaml.safe_load(value))  # as YAML reads them: float nan and inf
    with pytest.raises(ConfigError, match=message.format(value.replace(".", r"\."))):
        check_config(config, SCHEMA)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["transcriptions"]["generated_seed_1"]["generate"].update(max_length=10_001),
        lambda c: c["corpus_analysis"]["generated_50"]["tunes"]["generate"].update(max_length=10_001),
    ],
)
def test_max_length_is_at_most_ten_thousand(config, change):
    change(config)
    with pytest.raises(ConfigError, match=r"max_length: 10001 is greater than the maximum of 10000"):
        check_config(config, SCHEMA)


@pytest.fixture
def small_checkpoint(tmp_path):
    """A 2-layer model over the excerpt's tokens (no M:7/8), saved as the workflow saves one."""
    path = tmp_path / "small.safetensors"
    save_checkpoint(small_model(n_units=8, n_layers=2), path)
    return str(path)


def test_the_shipped_config_is_feasible(config, monkeypatch):
    monkeypatch.chdir(ROOT)  # the model's path is relative to where snakemake runs
    check_feasible(config)


def generation(config: dict, where: str) -> dict:
    if where == "transcriptions":
        return config["transcriptions"]["generated_seed_1"]["generate"]
    return config["corpus_analysis"]["generated_50"]["tunes"]["generate"]


WHERE = {
    "transcriptions": "transcriptions -> generated_seed_1 -> generate -> prime",
    "corpus_analysis": "corpus_analysis -> generated_50 -> tunes -> generate -> prime",
}


@pytest.mark.parametrize("where", WHERE)
def test_a_prime_as_long_as_max_length_is_refused(config, where):
    generation(config, where).update(prime=["M:4/4", "K:Cmaj", "C"], max_length=3)
    with pytest.raises(ConfigError, match=rf"{WHERE[where]}: 3 prime tokens leave no step .* max_length 3"):
        check_feasible(config)
    generation(config, where).update(max_length=4)
    check_feasible(config)


@pytest.mark.parametrize("model", ["untrained", "missing.safetensors", "folkrnn_v2.pkl"])
@pytest.mark.parametrize("where", WHERE)
def test_a_prime_token_that_is_no_folk_rnn_token_is_refused_whatever_the_model(config, model, where):
    config["model"]["file"] = model
    generation(config, where).update(prime=["M:4/4", "K:Cmaj", "Q"])
    with pytest.raises(
        ConfigError, match=rf"{WHERE[where]}: token 'Q' \(position 2\) is not a folk-rnn token"
    ):
        check_feasible(config)


@pytest.mark.parametrize("token", ["<s>", "</s>"])
def test_a_prime_cannot_hold_start_or_end(config, small_checkpoint, token):
    config["model"]["file"] = small_checkpoint
    generation(config, "transcriptions").update(prime=["M:4/4", token])
    with pytest.raises(ConfigError, match=rf"token '{token}' \(position 1\): .*cannot hold <s> or </s>"):
        check_feasible(config)


@pytest.mark.parametrize("where", WHERE)
def test_a_prime_token_outside_the_vocabulary_is_named_with_the_model(config, small_checkpoint, where):
    config["model"]["file"] = small_checkpoint
    config["record"]["layers"] = [1, 2]
    generation(config, where).update(prime=["M:7/8"])  # a folk-rnn token, but not the model's
    message = (
        rf"{WHERE[where]}: token 'M:7/8' \(position 0\) is not in the vocabulary of .*small\.safetensors"
    )
    with pytest.raises(ConfigError, match=message):
        check_feasible(config)


@pytest.mark.parametrize("section", ["record", "analysis", "resemblance"])
def test_a_layer_the_checkpoint_lacks_is_named(config, small_checkpoint, section):
    config["model"]["file"] = small_checkpoint
    config["record"]["layers"] = [1, 2]
    config[section]["layers"] = [1, 3]
    message = (
        rf"{section} -> layers: layer 3 does not exist: the model \(.*small\.safetensors\) has layers 1\.\.2"
    )
    with pytest.raises(ConfigError, match=message):
        check_feasible(config)


def test_a_layer_the_untrained_model_lacks_is_named(config):
    config["model"]["file"] = "untrained"
    config["model"]["untrained"]["n_layers"] = 2
    with pytest.raises(ConfigError, match=r"record -> layers: layer 3 does not exist: .*has layers 1\.\.2"):
        check_feasible(config)


@pytest.mark.parametrize("model", ["missing.safetensors", "folkrnn_v2.pkl"])
def test_what_a_model_file_cannot_tell_cheaply_is_left_to_its_jobs(config, model):
    config["model"]["file"] = model
    config["record"]["layers"] = [1, 2, 3, 9]  # a layer count unknown until the model loads
    generation(config, "transcriptions").update(prime=["M:7/8"])
    check_feasible(config)


def test_a_model_file_that_is_not_a_checkpoint_is_named(config, tmp_path):
    (tmp_path / "junk.safetensors").write_text("not a checkpoint")
    config["model"]["file"] = str(tmp_path / "junk.safetensors")
    with pytest.raises(ConfigError, match=r"model -> file: cannot read .*junk\.safetensors"):
        check_feasible(config)


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


def test_jobs_find_the_package_on_their_path_alone(monkeypatch):
    """A job's Python (no site-packages: -S) imports the package from the PYTHONPATH
    the workflow exports, as it must to unpickle its settings params."""
    import subprocess
    import sys

    from folkrnn_lens.jobs import export_package_path

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    folder = export_package_path()
    code = "import folkrnn_lens.names, sys; print(folkrnn_lens.names.__file__)"
    found = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.startswith(folder)
    assert os.environ["PYTHONPATH"].split(os.pathsep) == [folder, "/elsewhere"]


def test_a_job_s_blas_threads_are_set_even_after_numpy_has_loaded():
    """Snakemake's script preamble loads numpy before the script runs: the threads
    must still reach the loaded BLAS, or a result depends on the jobs beside it."""
    code = (
        "import numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "from folkrnn_lens.jobs import pin_blas_threads\n"
        "pin_blas_threads(1)\n"
        "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[1]"


def test_an_ablated_unit_the_model_lacks_is_named(config, small_checkpoint):
    config["model"]["file"] = small_checkpoint  # 2 layers of 8 units
    config["record"]["layers"] = [1, 2]
    config["interventions"]["ablation"] = {"units": [3, 700]}
    message = (
        r"ablation -> units: unit 700 does not exist: the model \(.*small\.safetensors\) has units 0\.\.7"
    )
    with pytest.raises(ConfigError, match=message):
        check_feasible(config)
    config["model"]["file"] = "untrained"
    config["model"]["untrained"]["n_units"] = 64
    with pytest.raises(ConfigError, match=r"unit 700 does not exist: the model \(untrained.*units 0\.\.63"):
        check_feasible(config)
