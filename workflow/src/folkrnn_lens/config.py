"""Config validation with messages that say where the problem is and what fits."""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match


class ConfigError(ValueError):
    """A config that does not fit the schema; the message names the key and the fix."""


def _where(error) -> str:
    return " -> ".join(str(part) for part in error.absolute_path) or "(top level)"


def check_config(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError naming the first problem jsonschema finds (the most
    specific one, where several branches of a choice failed)."""
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
