"""Workflow configuration: schema validation with messages naming the key (config/README.md).

A bad config must stop the run before any job with a message naming the key, so the
JSON-schema errors are rewritten as ``config key flow.lloq_events: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ckpk.errors import ConfigError


def _coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """Numbers and booleans given as text become numbers and booleans.

    ``snakemake --config 'flow={lloq_events: 50}'`` parses nested values with YAML's
    base loader, which keeps every scalar as a string; the schema says what they are.
    """
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {k: _coerce(v, properties.get(k, {})) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "null" in types and text.lower() in ("", "null", "none", "~"):
        return None
    if "integer" in types and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            return value
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def _key_name(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        match = re.search(r"'([^']+)' is a required property", error.message)
        if match:
            return f"{path}.{match.group(1)}" if path else match.group(1)
    if error.validator == "additionalProperties":
        match = re.search(r"\('([^']+)'", error.message)
        if match:
            return f"{path}.{match.group(1)}" if path else match.group(1)
    return path or "(top level)"


def validate_config(config: Mapping[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Validate ``config`` against the schema, filling defaults; raise ConfigError.

    The message lists every bad key with what is wrong, e.g.
    ``config key nca.auc_method: 'log' is not one of ['lin-up/log-down', 'linear', 'lin-log']``.
    """
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    config = _coerce(dict(config), schema)
    validator_class = _with_defaults(jsonschema.Draft202012Validator)
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            message = error.message
            if error.validator == "additionalProperties":
                message = "unknown key (check its spelling against config/README.md)"
            elif error.validator in ("oneOf", "anyOf") and "description" in error.schema:
                # "not valid under any of the given schemas" says nothing to a reader.
                message = f"{error.instance!r} is not {error.schema['description']}"
            lines.append(f"config key {_key_name(error)}: {message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return config


def _with_defaults(validator_class):
    """A validator that also fills in schema defaults for missing keys."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    default = subschema["default"]
                    instance[name] = dict(default) if isinstance(default, dict) else default
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})
