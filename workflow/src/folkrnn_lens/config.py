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
    message = error.message
    if error.validator == "oneOf":
        options = [sorted(branch.get("required", [])) for branch in error.validator_value]
        message = (
            f"expected exactly one of the keys {[o[0] for o in options if o]}, got {sorted(error.instance)}"
        )
    elif error.validator == "additionalProperties" and "properties" in error.schema:
        message += f"; allowed keys: {sorted(error.schema['properties'])}"
    raise ConfigError(f"config error at {_where(error)}: {message}")
