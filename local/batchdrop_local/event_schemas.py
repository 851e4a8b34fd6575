"""The JSON Schema of each event type, as subscribers receive it: `docs/events/<type>.schema.json`.

    python -m batchdrop_local.event_schemas [DIRECTORY]     # writes them (default docs/events)
    python -m batchdrop_local.event_schemas --check         # exit 1 if the committed files are stale

The schemas describe the published message, not the model's input: the
publisher leaves out fields that have no value (so a field is absent rather
than `null`), and a field with a default is always present. Subscribers
should ignore fields they do not know: `batchdrop.event/v1` may gain
optional fields, never lose or change one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from batchdrop.events.contract import (
    EVENT_SCHEMA,
    JobRecovering,
    JobStatusChanged,
    JobStuck,
    PlatformDrift,
    RunEnded,
    RunRejected,
    RunSubmitted,
    TeamBudget,
)

EVENT_MODELS: dict[str, type[BaseModel]] = {
    str(model.model_fields["type"].default): model
    for model in (
        RunSubmitted,
        RunRejected,
        RunEnded,
        JobStatusChanged,
        JobRecovering,
        JobStuck,
        TeamBudget,
        PlatformDrift,
    )
}
DEFAULT_DIRECTORY = Path("docs/events")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(event_type: str) -> dict[str, Any]:
    model = EVENT_MODELS[event_type]
    generated = model.model_json_schema(by_alias=True, mode="serialization")
    for definition in generated.get("$defs", {}).values():
        _as_published(definition)
    _as_published(generated)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{event_type}.schema.json",
        "title": f"{EVENT_SCHEMA} {event_type}",
        **{key: value for key, value in generated.items() if key != "title"},
    }


def event_schemas() -> dict[str, dict[str, Any]]:
    return {event_type: event_schema(event_type) for event_type in EVENT_MODELS}


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_event_schemas(directory: Path = DEFAULT_DIRECTORY) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in event_schemas().items():
        path = directory / f"{event_type}.schema.json"
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = DEFAULT_DIRECTORY) -> list[Path]:
    """The schema files that are missing or differ from what the models say."""
    stale = []
    for event_type, schema in event_schemas().items():
        path = directory / f"{event_type}.schema.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != schema_text(schema):
            stale.append(path)
    return stale


def _as_published(schema: dict[str, Any]) -> None:
    """Fields without a value are left out, never `null`; every other field is always there."""
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    required = []
    for name, field in properties.items():
        if "default" in field and field["default"] is None:
            del field["default"]
            options = [option for option in field.pop("anyOf", []) if option != {"type": "null"}]
            if len(options) == 1:
                field.update(options[0])
            elif options:
                field["anyOf"] = options
        else:
            required.append(name)
    if properties:
        schema["required"] = required


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchdrop_local.event_schemas", description=__doc__.split("\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--check", action="store_true", help="only check that the files are current")
    arguments = parser.parse_args(argv)
    if arguments.check:
        stale = stale_schemas(arguments.directory)
        for path in stale:
            print(f"stale: {path} (regenerate with python -m batchdrop_local.event_schemas)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_event_schemas(arguments.directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
