"""Config validation with messages that say where the problem is and what fits."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from folkrnn_lens.tokens.format import END, START, is_tune_token

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
"""The config's schema: every key, what it means, and its default (the one place of each)."""


class ConfigError(ValueError):
    """A config that does not fit the schema; the message names the key and the fix."""


def resolve_config(config: dict) -> dict:
    """A copy of ``config``, checked against the schema, with every default the schema
    carries filled in (Snakemake's ``validate(..., set_default=True)``, as the workflow
    does): what the package's settings objects are built from."""
    from snakemake.utils import validate

    resolved = copy.deepcopy(config)
    check_config(resolved)
    validate(resolved, str(SCHEMA_PATH), set_default=True)
    return resolved


# Where each section sits in a config, and the least config that holds it.
_SECTIONS = {
    "analysis": ("analysis",),
    "resemblance": ("resemblance",),
    "record": ("record",),
    "limits": ("limits",),
    "generation": ("transcriptions", "tune", "generate"),
    "training": ("training", "run"),
}


def resolve_section(section: str, values: dict | None = None) -> dict:
    """One section of config (``analysis``, ``resemblance``, ``record``, ``limits``, a
    transcription's ``generation``, a ``training`` run) with the schema's defaults
    filled in under ``values``: what a caller outside the workflow passes for a
    section it sets only in part (or not at all)."""
    path = _SECTIONS[section]
    config = {"model": {"file": "untrained"}, "transcriptions": {"tune": {"generate": {"seed": 0}}}}
    if section == "training":
        values = {"corpus": "corpus", **(values or {})}
    target = config
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = copy.deepcopy(values) if values is not None else target.get(path[-1], {})
    resolved = resolve_config(config)
    for key in path:
        resolved = resolved[key]
    return resolved


def _where(error) -> str:
    return _path(error.absolute_path)


def _path(parts) -> str:
    return " -> ".join(str(part) for part in parts) or "(top level)"


def check_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> None:
    """Raise ConfigError naming the first problem jsonschema finds (the most
    specific one, where several branches of a choice failed)."""
    check_finite(config)
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = Draft202012Validator(schema)
    error = best_match(validator.iter_errors(config))
    if error is None:
        return
    error = _chosen_branch_error(error)
    message = error.message
    if error.validator == "oneOf":
        options = [sorted(branch.get("required", [])) for branch in error.validator_value]
        message = (
            f"expected exactly one of the keys {[o[0] for o in options if o]}, got {sorted(error.instance)}"
        )
    elif error.validator == "additionalProperties" and "properties" in error.schema:
        message += f"; allowed keys: {sorted(error.schema['properties'])}"
    raise ConfigError(f"config error at {_where(error)}: {message}")


def check_finite(value, parts: tuple = ()) -> None:
    """Raise ConfigError at the first NaN or infinity (YAML's .nan, .inf): they pass
    every minimum and maximum of the schema (comparisons with NaN are all false)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, (*parts, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_finite(item, (*parts, index))
    elif isinstance(value, float) and not math.isfinite(value):
        yaml_text = ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
        raise ConfigError(f"config error at {_path(parts)}: {yaml_text} is not a finite number")


def _chosen_branch_error(error):
    """For a choice (oneOf) where the entry has the keys of exactly one branch, that
    branch's own error ('index' was unexpected), not "expected one of ..."."""
    while error.validator == "oneOf" and isinstance(error.instance, dict):
        chosen = [
            k
            for k, branch in enumerate(error.validator_value)
            if branch.get("required") and set(branch["required"]) <= set(error.instance)
        ]
        own = [e for e in error.context if chosen and e.relative_schema_path[0] == chosen[0]]
        if len(chosen) != 1 or not own:
            break
        error = best_match(own)
    return error


def check_references(config: dict) -> None:
    """Raise ConfigError where one part of config names another that is not there
    (what the schema cannot say): corpora, transcriptions, corpus analyses."""
    corpora = config.get("corpora", {})
    analyses = config.get("corpus_analysis", {})

    def check(where: str, name: str, known: dict, what: str) -> None:
        if name not in known:
            raise ConfigError(
                f"config error at {where}: {name!r} is not one of the configured {what} {sorted(known)}"
            )

    for corpus in config["model"].get("untrained", {}).get("vocabulary_corpora", []):
        check("model -> untrained -> vocabulary_corpora", corpus, corpora, "corpora")
    for run, settings in config.get("training", {}).items():
        check(f"training -> {run} -> corpus", settings["corpus"], corpora, "corpora")
    for probe, settings in config.get("probes", {}).items():
        check(f"probes -> {probe} -> of", settings["of"], config["transcriptions"], "transcriptions")
    for analysis, settings in analyses.items():
        if "corpus" in settings["tunes"]:
            where = f"corpus_analysis -> {analysis} -> tunes -> corpus"
            check(where, settings["tunes"]["corpus"], corpora, "corpora")
    for pair in config.get("corpus_comparisons", []):
        for analysis in pair:
            check("corpus_comparisons", analysis, analyses, "corpus analyses")
    interventions = config.get("interventions", {})
    for name in interventions.get("transcriptions") or []:
        check("interventions -> transcriptions", name, config["transcriptions"], "transcriptions")
    for pair, settings in interventions.get("patching", {}).get("pairs", {}).items():
        for role in ("clean", "corrupted"):
            where = f"interventions -> patching -> pairs -> {pair} -> {role}"
            check(where, settings[role], config["transcriptions"], "transcriptions")
    ablation = interventions.get("ablation", {})
    if ablation.get("corpus_analysis") is not None:
        where = "interventions -> ablation -> corpus_analysis"
        check(where, ablation["corpus_analysis"], analyses, "corpus analyses")
    influence = interventions.get("influence", {})
    if influence.get("corpus") is not None:
        check("interventions -> influence -> corpus", influence["corpus"], corpora, "corpora")


# ---- what config and the model file show cannot run (checked before any job)


@dataclass(frozen=True)
class _ModelFacts:
    """What the configured model's file tells without loading weights; None: unknown."""

    label: str
    n_layers: int | None
    vocab: frozenset[str] | None
    n_units: int | None = None


def check_feasible(config: dict) -> None:
    """Raise ConfigError for what the config and the model's header show cannot run:
    a prime that is not folk-rnn tokens, is not in the model's vocabulary or leaves no
    room within max_length; a layer the model does not have. Run after validate(),
    which fills the defaults."""
    model = _model_facts(config["model"])
    for where, generate in _generations(config):
        _check_prime(where, generate, model)
    for where, layers in _layer_lists(config):
        _check_layers(where, layers, model)
    _check_ablation(config.get("interventions", {}).get("influence", {}), model)
    _check_units(config.get("interventions", {}).get("ablation", {}), model)


def _check_units(ablation: dict, model: _ModelFacts) -> None:
    """The units an ablation lists, against the model's units per layer."""
    if model.n_units is None:
        return
    for unit in ablation.get("units") or []:
        if unit >= model.n_units:
            raise ConfigError(
                f"config error at interventions -> ablation -> units: unit {unit} does not exist: the "
                f"model ({model.label}) has units 0..{model.n_units - 1} per layer"
            )


def _check_ablation(influence: dict, model: _ModelFacts) -> None:
    """The replacement token of ``ablation: token``: given, and the model's."""
    if influence.get("ablation") != "token":
        return
    where = "config error at interventions -> influence -> token"
    token = influence.get("token")
    if not token:
        raise ConfigError(f"{where}: ablation: token needs the token that replaces each input")
    if model.vocab is not None and token not in model.vocab:
        raise ConfigError(f"{where}: {token!r} is not in the vocabulary of {model.label}")


def _model_facts(model: dict) -> _ModelFacts:
    file = model["file"]
    if file == "untrained":
        n_layers = model.get("untrained", {}).get("n_layers", 3)
        n_units = model.get("untrained", {}).get("n_units", 512)
        return _ModelFacts(f"untrained, n_layers: {n_layers}", n_layers, None, n_units)
    if not file.endswith(".safetensors") or not Path(file).is_file():
        # a pickle's vocabulary and layers cost a full unpickling; a missing file may be
        # a training run's output, not made yet
        return _ModelFacts(file, None, None)
    from safetensors import SafetensorError

    from folkrnn_lens.model.checkpoint import (  # imports torch: only when needed
        CheckpointError,
        checkpoint_header,
    )

    try:
        header = checkpoint_header(file)
    except (CheckpointError, SafetensorError, OSError) as error:
        raise ConfigError(f"config error at model -> file: cannot read {file}: {error}") from None
    facts = header["config"]
    return _ModelFacts(file, facts["n_layers"], frozenset(header["vocab"]), facts.get("n_units"))


def _generations(config: dict):
    """(where, settings) of every generation: transcriptions and corpus analyses."""
    for name, spec in config["transcriptions"].items():
        if "generate" in spec:
            yield f"transcriptions -> {name} -> generate", spec["generate"]
    for name, analysis in config.get("corpus_analysis", {}).items():
        if "generate" in analysis["tunes"]:
            yield f"corpus_analysis -> {name} -> tunes -> generate", analysis["tunes"]["generate"]


def _check_prime(where: str, generate: dict, model: _ModelFacts) -> None:
    prime = generate.get("prime", [])
    for position, token in enumerate(prime):
        _check_prime_token(f"{where} -> prime", token, position, model)
    max_length = generate.get("max_length")  # validate() fills the default
    if max_length is not None and len(prime) >= max_length:
        raise ConfigError(
            f"config error at {where} -> prime: {len(prime)} prime tokens leave no step to generate "
            f"within max_length {max_length}"
        )


def _check_prime_token(where: str, token: str, position: int, model: _ModelFacts) -> None:
    at = f"config error at {where}: token {token!r} (position {position})"
    if token in (START, END):
        raise ConfigError(f"{at}: generation starts after {START} and a prime cannot hold {START} or {END}")
    # a known vocabulary decides (a model may be trained on tokens of its own); else the format
    if model.vocab is not None:
        if token not in model.vocab:
            raise ConfigError(f"{at} is not in the vocabulary of {model.label}")
    elif not is_tune_token(token):
        raise ConfigError(
            f"{at} is not a folk-rnn token (a meter like M:6/8, a mode like K:Cmaj, a note, rest, "
            "length, bar line...)"
        )


def _layer_lists(config: dict):
    """(where, layers) of every list of layers the config names."""
    for section in ("record", "analysis", "resemblance"):
        if "layers" in config.get(section, {}):
            yield f"{section} -> layers", config[section]["layers"]
    ablation = config.get("interventions", {}).get("ablation", {})
    if ablation.get("layers"):
        yield "interventions -> ablation -> layers", ablation["layers"]
    for name, analysis in config.get("corpus_analysis", {}).items():
        if "layers" in analysis.get("resemblance", {}):
            yield f"corpus_analysis -> {name} -> resemblance -> layers", analysis["resemblance"]["layers"]
        if analysis.get("selectivity", {}).get("layers"):
            yield f"corpus_analysis -> {name} -> selectivity -> layers", analysis["selectivity"]["layers"]


def _check_layers(where: str, layers: list[int], model: _ModelFacts) -> None:
    if model.n_layers is None:
        return
    for layer in layers:
        if not 1 <= layer <= model.n_layers:
            raise ConfigError(
                f"config error at {where}: layer {layer} does not exist: the model ({model.label}) "
                f"has layers 1..{model.n_layers}"
            )
