"""The JSON Schema shipped for editors agrees with the loader and accepts every example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from watchd.config.jobs import JOB_KEYS, WATCH_VALUES
from watchd.config.loader import CONTROL_KEYS, MAIN_KEYS, METRICS_KEYS

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "config" / "watchd.schema.json").read_text())
EXAMPLES = sorted([*REPO.glob("config/**/*.yaml"), *REPO.glob("packaging/**/*.yaml")], key=str)


def test_the_schema_is_itself_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: str(path.relative_to(REPO)))
def test_every_example_validates(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


def test_the_schema_knows_exactly_the_loaders_keys() -> None:
    job = SCHEMA["$defs"]["jobSettings"]["properties"]
    assert set(SCHEMA["properties"]) == set(MAIN_KEYS)
    assert set(SCHEMA["properties"]["control"]["properties"]) == set(CONTROL_KEYS)
    assert set(SCHEMA["properties"]["metrics"]["properties"]) == set(METRICS_KEYS)
    assert set(job) == set(JOB_KEYS)
    assert set(job["watch"]["properties"]) == set(WATCH_VALUES)


@pytest.mark.parametrize(
    "document",
    [
        {"jobs": {"web": {"command": "x", "restrat": "always"}}},
        {"jobs": {"web": {"stop_timeout": "5s"}}},  # no command
        {"jobs": {"web": {"command": "x", "stop_timeout": "soon"}}},
        {"jobs": {"web": {"command": "x", "watch": {"backend": "fsevents"}}}},
        {"jobs": {"bad name": {"command": "x"}}},
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(document: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
