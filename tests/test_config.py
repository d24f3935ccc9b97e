"""The configuration schema as a user meets it: defaults filled, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ckpk.config import ConfigError, validate_config

PROJECT = Path(__file__).resolve().parents[1]
SCHEMA = PROJECT / "workflow" / "schemas" / "config.schema.yaml"


def _shipped() -> dict:
    return yaml.safe_load((PROJECT / "config" / "config.yaml").read_text(encoding="utf-8"))


def test_population_analytes_default_is_primary_when_the_key_is_absent() -> None:
    config = _shipped()
    config.pop("population")
    assert validate_config(config, SCHEMA)["population"] == {"analytes": "primary"}


@pytest.mark.parametrize("value", ["all", "primary", ["car_per_ul", "car_copies_per_ug"]])
def test_population_analytes_accepts_the_choices_and_lists(value: object) -> None:
    config = _shipped() | {"population": {"analytes": value}}
    assert validate_config(config, SCHEMA)["population"]["analytes"] == value


@pytest.mark.parametrize("value", ["first", ["cd19"], []])
def test_a_bad_population_choice_is_named_with_what_is_allowed(value: object) -> None:
    config = _shipped() | {"population": {"analytes": value}}
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    text = str(error.value)
    assert f"config key population.analytes: {value!r} is not primary, all, or a list" in text
