"""`ktrdr operations params TYPE`: the params an operation type takes, from the API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ktrdr.cli.client import exits_on_api_failure
from ktrdr.cli.output import JsonOption, UrlOption, api, out, print_json

_BOUNDS = (
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("minLength", "length ≥"),
)


@exits_on_api_failure
def params(
    ctx: typer.Context,
    operation_type: Annotated[
        str,
        typer.Argument(metavar="TYPE", help="training, backtesting or agent_research."),
    ],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the params TYPE takes (`-p KEY=VALUE` of `ktrdr operations start`): each
    field, its type and bounds, its default and what it does."""
    items = api(ctx, url).get("/operation-types")["items"]
    known = {item["operation_type"]: item for item in items}
    if operation_type not in known:
        raise typer.BadParameter(
            f"{operation_type!r} is not an operation type; one of {', '.join(known)}",
            param_hint="TYPE",
        )
    found = known[operation_type]
    if as_json:
        print_json(found)
        return
    out().print(params_table(found["params_schema"], found["defaults"]))


def params_table(schema: dict[str, Any], defaults: dict[str, Any]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("FIELD", "TYPE", "DEFAULT", "DESCRIPTION"):
        table.add_column(column, overflow="fold")
    definitions = schema.get("$defs", {})
    for name, field in schema["properties"].items():
        default = json.dumps(defaults.get(name), separators=(",", ":"))
        description = field.get("description", "").replace("``", "")
        table.add_row(name, _type(field, definitions), default, description)
    return table


def _type(field: dict[str, Any], definitions: dict[str, Any]) -> str:
    if "discriminator" in field:
        tag = field["discriminator"]["propertyName"]
        choices = [_definition(choice, definitions) for choice in field["oneOf"]]
        return " | ".join(str(choice["properties"][tag]["default"]) for choice in choices)
    if "$ref" in field:
        return _type(_definition(field, definitions), definitions)
    if "anyOf" in field:
        return " | ".join(_type(choice, definitions) for choice in field["anyOf"])
    if "enum" in field:
        return " | ".join(map(str, field["enum"]))
    kind = str(field.get("type", "any"))
    if kind == "array" and "items" in field:
        kind = f"list of {_type(field['items'], definitions)}"
    bounds = [f"{sign}{field[key]}" for key, sign in _BOUNDS if key in field]
    return " ".join([kind, *bounds])


def _definition(field: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = definitions[field["$ref"].rsplit("/", 1)[-1]]
    return found
