"""The cost model: what a transcription's jobs need as it grows, and refusing
before any job what would pass config's limits."""

import copy

import pytest
import yaml
from snakemake.utils import validate

from folkrnn_lens.cost import InfeasibleError, JobSizes, check_limits, job_costs

from .conftest import ROOT


@pytest.fixture(scope="module")
def config():
    """The shipped config with the schema's defaults, as the workflow sees it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


def test_every_job_costs_more_for_a_longer_tune(config):
    short, long = (job_costs(JobSizes.from_config(config, n)) for n in (200, 2000))
    analysis = {"activations", "matrices", "figures", "score", "resemblance", "explorer"}
    assert set(short) == analysis | {"influence", "attribution", "ablation"}
    for stage in short:
        assert long[stage].seconds > short[stage].seconds, stage
        assert long[stage].peak_mb >= short[stage].peak_mb, stage
        assert long[stage].mem_mb >= long[stage].peak_mb and long[stage].runtime >= 1


def test_interventions_cost_only_the_transcriptions_they_cover(config):
    config["interventions"]["transcriptions"] = ["tune_a"]
    assert "influence" in job_costs(JobSizes.from_config(config, 200, "tune_a"))
    other = job_costs(JobSizes.from_config(config, 200, "tune_b"))
    assert not {"influence", "attribution", "ablation"} & set(other)


def test_matrices_and_figures_grow_as_the_pairs_of_steps(config):
    peak = {n: job_costs(JobSizes.from_config(config, n)) for n in (500, 1000, 2000)}
    for stage in ("matrices", "figures"):
        growth = [peak[b][stage].peak_mb - peak[a][stage].peak_mb for a, b in ((500, 1000), (1000, 2000))]
        assert growth[1] > 2.2 * growth[0], stage  # linear alone: 2 times; with n^2 more


def test_the_resemblance_stays_within_its_budget_however_long_the_tune(config):
    sizes = JobSizes.from_config(config, 5000)
    assert job_costs(sizes)["resemblance"].peak_mb < 4096
    without_bars = copy.deepcopy(config)
    without_bars["resemblance"]["bar_permutations"] = 0
    slower, faster = (
        job_costs(sizes)["resemblance"],
        job_costs(JobSizes.from_config(without_bars, 5000))["resemblance"],
    )
    assert faster.seconds < slower.seconds / 2


def test_the_shipped_tunes_fit_the_default_limits(config):
    for steps in (100, 400, 1000):
        costs = check_limits("tune", config, steps)
        assert all(cost.mem_mb <= 4096 and cost.runtime <= 120 for cost in costs.values())


def test_a_tune_over_the_limits_is_refused_naming_what_makes_it_feasible(config):
    with pytest.raises(InfeasibleError) as error:
        check_limits("long", config, 5000)
    message = str(error.value)
    assert "transcription 'long'" in message and "5,000 steps" in message and "limits.runtime" in message
    assert "resemblance: {bar_permutations: 0}" in message
    assert "transcriptions -> long -> window: {start: 0, stop: 1000}" in message
    assert "(fits)" in message  # at least one remedy alone is enough


def test_raising_the_limits_admits_the_tune(config):
    generous = copy.deepcopy(config)
    generous["limits"] = {"mem_mb": 64000, "runtime": 100000}
    assert check_limits("long", generous, 5000)["resemblance"].runtime > 120
