"""What the jobs of one transcription cost, as functions of its number of steps.

The matrices, figures and resemblance of an n-step tune grow as n^2 (every pair of
steps) and the resemblance's nulls as n^2 log n or, for the bar null, n^2 times the
permutations. The rules declare the memory and runtime this model predicts (with a
margin), so a cluster job asks for what it needs; and the workflow refuses, before
any job, a transcription whose jobs would pass config's ``limits``, naming the
settings that make it feasible.

The coefficients were fitted to ``benchmarks/cost_model.py`` on a 2-core machine
(wall seconds of a job's whole process, peak RSS in MiB); rerun it to check them on
another machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from folkrnn_lens.matrices.plan import plan_analysis
from folkrnn_lens.resemblance.comparisons import (
    MEMORY_BYTES,
    bytes_per_matrix,
    comparison_chunks,
    matrices_per_chunk,
    transient_bytes,
)
from folkrnn_lens.resemblance.settings import Settings

MIB = 1 << 20
UNITS = 512  # folk-rnn v2's units per layer: the activations' width
MEMORY_MARGIN = 1.3  # a job asks for its predicted peak times this
TIME_MARGIN = 2.0  # and for this many times its predicted runtime (machines differ)


@dataclass(frozen=True)
class JobSizes:
    """What a transcription's jobs handle: its steps and the work config asks for."""

    steps: int
    recorded: int  # (layer, quantity) pairs in activations.parquet
    matrices: int  # matrices of the analysis: one heatmap each
    frames: int  # animation frames (panels drawn)
    gramians: int  # matrices the resemblance compares, X^T X among them
    comparisons: int  # comparisons of one statistic
    statistics: int
    bar_comparisons: int  # comparisons tested against the bar null
    bar_permutations: int
    bar_groups: int  # bar-permuted copies of b made per permutation and statistic
    circular: bool
    resemblance: bool  # the stage is enabled
    influence: bool = False  # the tune's token influence is measured (interventions)
    attribution: bool = False  # and its direct logit attribution
    ablation_rows: int = 0  # the unit ablations it reads the tune with (a sweep: every unit)

    @classmethod
    def from_config(cls, config: dict, steps: int, name: str | None = None) -> JobSizes:
        """The sizes of a tune of ``steps`` steps under a config whose defaults are filled
        (``name``: the transcription's, which decides whether it is intervened on)."""
        layers, quantities = config["record"]["layers"], config["record"]["quantities"]
        plan = plan_analysis(config["analysis"], layers, quantities)
        section = config["resemblance"]
        settings = Settings.from_config(section, layers, quantities)
        comparisons = settings.comparisons()
        return cls(
            steps=steps,
            recorded=len(layers) * len(quantities),
            matrices=len(plan.matrices),
            frames=sum(len(frame) for a in plan.animations for frame in a.frames),
            gramians=1 + len(settings.layers) * len(settings.quantities),
            comparisons=len(comparisons),
            statistics=len(settings.statistics),
            bar_comparisons=sum(c.family in settings.bar_families for c in comparisons),
            bar_permutations=settings.bar_permutations,
            bar_groups=_bar_groups(comparisons, settings.bar_families, steps),
            circular=settings.circular_shifts,
            resemblance=section.get("enabled", True),
            influence=intervened(config, name) and config["interventions"]["influence"]["enabled"],
            attribution=intervened(config, name) and config["interventions"]["attribution"]["enabled"],
            ablation_rows=_ablation_rows(config, name),
        )


def _ablation_rows(config: dict, name: str | None) -> int:
    ablation = config.get("interventions", {}).get("ablation", {})
    if not (ablation.get("enabled") and intervened(config, name)):
        return 0
    return len(ablation["layers"] or [None]) * (UNITS if ablation["units"] is None else 1)


def intervened(config: dict, name: str | None) -> bool:
    """Whether config's interventions cover transcription ``name`` (None: any)."""
    chosen = config.get("interventions", {}).get("transcriptions")
    return chosen is None or name is None or name in chosen


def _bar_groups(comparisons: list, bar_families, steps: int) -> int:
    """The (chunk, b) pairs of the bar null: each permutes its b once per permutation."""
    most, groups = matrices_per_chunk(steps), 0
    for shift in {c.shift for c in comparisons}:
        rows = [k for k, c in enumerate(comparisons) if c.shift == shift]
        for chunk in comparison_chunks(rows, comparisons, most):
            groups += len({comparisons[k].b for k in chunk if comparisons[k].family in bar_families})
    return groups


@dataclass(frozen=True)
class JobCost:
    """A job's predicted wall time and peak memory, and what it asks a scheduler for."""

    seconds: float
    peak_mb: float

    @property
    def mem_mb(self) -> int:
        return math.ceil(self.peak_mb * MEMORY_MARGIN)

    @property
    def runtime(self) -> int:
        """Minutes, as Snakemake's ``runtime`` resource counts them."""
        return max(1, math.ceil(self.seconds * TIME_MARGIN / 60))


def job_costs(sizes: JobSizes) -> dict[str, JobCost]:
    """The cost of each per-transcription job, by stage."""
    n = sizes.steps
    pairs_mb = n * n / MIB  # one float32 n x n matrix is 4 * pairs_mb
    recorded_mb = sizes.recorded * n * UNITS * 4 / MIB
    pictures = sizes.matrices + sizes.frames
    costs = {
        "activations": JobCost(2.0 + 0.001 * n, 420 + 0.08 * n),
        "matrices": JobCost(
            0.5 + 0.005 * sizes.matrices + 3.0e-8 * sizes.matrices * n * n,
            290 + 4.1 * recorded_mb + 24 * pairs_mb,
        ),
        "figures": JobCost(4.0 + 0.08 * pictures + 4.5e-8 * pictures * n * n, 480 + 32 * pairs_mb),
        "score": JobCost(2.0 + 0.002 * n, 150),
        "explorer": JobCost(1.6 + 0.0005 * n, 170 + 4.2 * recorded_mb),
    }
    if sizes.resemblance:
        costs["resemblance"] = _resemblance_cost(sizes, recorded_mb)
    if sizes.influence:  # n re-reads, each from its step on: n^2 / 2 row-steps
        costs["influence"] = JobCost(2.4 + 3.5e-5 * n * n, 420 + 0.05 * n + 460 * pairs_mb)
    if sizes.ablation_rows:  # every ablation reads the whole tune: rows x n row-steps
        rows = sizes.ablation_rows * n
        costs["ablation"] = JobCost(3.0 + 1.0e-4 * rows, 450 + 0.25 * rows / 1000)
    if sizes.attribution:
        costs["attribution"] = JobCost(2.0 + 0.001 * n, 420 + 0.1 * n)
    return costs


def _resemblance_cost(sizes: JobSizes, recorded_mb: float) -> JobCost:
    """Preparing each compared matrix (ranks: n^2 log n), the circular null (FFTs of its
    diagonals) and the bar null (a permuted copy of each chunk's b per permutation),
    per statistic. Where the
    matrices do not fit in MEMORY_BYTES together they are prepared again for each chunk
    of comparisons: about twice per comparison instead of once per matrix."""
    n = sizes.steps
    held = transient_bytes(n) + sizes.gramians * bytes_per_matrix(n)
    chunked = held > MEMORY_BYTES
    preparations = 2 * sizes.comparisons if chunked else 2 * sizes.gramians
    log_n = math.log2(max(n, 2))
    per_statistic = (
        1.5e-9 * preparations * n * n * log_n
        + (7e-10 * sizes.comparisons * n * n * log_n if sizes.circular else 0.0)
        # per element slower as a matrix outgrows the caches: n^2.77 fits 250..2,000 steps
        + 5.4e-9 * sizes.bar_groups * sizes.bar_permutations * n * n * (n / 1000) ** 0.77
    )
    seconds = 3.0 + sizes.statistics * per_statistic
    peak = 330 + 2.2 * recorded_mb + min(held, MEMORY_BYTES + transient_bytes(n)) / MIB
    return JobCost(seconds, peak)


class InfeasibleError(ValueError):
    """A transcription whose jobs would pass config's limits; the message says which
    settings make it feasible."""


def check_limits(name: str, config: dict, steps: int, where: str = "") -> dict[str, JobCost]:
    """The costs of a transcription's jobs; an InfeasibleError naming the jobs over
    config's ``limits`` and, for each remedy, what it would cost."""
    limits = config["limits"]
    costs = job_costs(JobSizes.from_config(config, steps, name))
    over = {stage: cost for stage, cost in costs.items() if not _fits(cost, limits)}
    if not over:
        return costs
    jobs = "; ".join(f"{stage} about {_minutes(cost)} and {cost.mem_mb:,} MB" for stage, cost in over.items())
    lines = [
        f"transcription {name!r}{where} has {steps:,} steps: {jobs}, over limits.runtime "
        f"{limits['runtime']} min / limits.mem_mb {limits['mem_mb']:,} MB. Settings that make it feasible:"
    ]
    for remedy, changed, changed_steps in _remedies(name, config, steps):
        after = job_costs(JobSizes.from_config(changed, changed_steps, name))
        fits = all(_fits(cost, limits) for cost in after.values())
        slowest = max(after.values(), key=lambda cost: cost.seconds)
        largest = max(after.values(), key=lambda cost: cost.mem_mb)
        verdict = "fits" if fits else "not enough alone"
        lines.append(
            f"  - {remedy}: longest job about {_minutes(slowest)}, largest {largest.mem_mb:,} MB ({verdict})"
        )
    lines.append("  - or raise limits.runtime and limits.mem_mb where the machine or cluster allows")
    raise InfeasibleError("\n".join(lines))


def _fits(cost: JobCost, limits: dict) -> bool:
    return cost.runtime <= limits["runtime"] and cost.mem_mb <= limits["mem_mb"]


def _minutes(cost: JobCost) -> str:
    return f"{cost.runtime} min"


def _remedies(name: str, config: dict, steps: int):
    """(description, changed config, steps) of each setting that cuts the cost."""
    resemblance = config["resemblance"]
    if resemblance.get("enabled", True) and resemblance["bar_permutations"] > 0:
        yield "resemblance: {bar_permutations: 0}", _with(config, "resemblance", bar_permutations=0), steps
    if resemblance.get("enabled", True) and len(resemblance["statistics"]) > 1:
        changed = _with(config, "resemblance", statistics=["pearson"], bar_permutations=0)
        yield "resemblance: {statistics: [pearson], bar_permutations: 0}", changed, steps
    if resemblance.get("enabled", True):
        yield "resemblance: {enabled: false}", _with(config, "resemblance", enabled=False), steps
    influence = config.get("interventions", {}).get("influence", {})
    if influence.get("enabled", False):
        changed = _with(config, "interventions", influence={**influence, "enabled": False})
        yield "interventions: {influence: {enabled: false}}", changed, steps
    analysis = _with(config, "analysis", quantities=["h"], cross_pairs=[])
    yield "analysis: {quantities: [h], cross_pairs: []} (fewer matrices)", analysis, steps
    window = min(steps, 1000)
    yield (
        f"a window of steps: transcriptions -> {name} -> window: {{start: 0, stop: {window}}}",
        config,
        window,
    )


def _with(config: dict, section: str, **values) -> dict:
    return {**config, section: {**config[section], **values}}
