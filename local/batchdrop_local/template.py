"""Reading `template.yaml` and resolving its intrinsic functions, as CloudFormation would.

The local stack is created from the template's own properties (one source of
truth): the same table keys and indexes, queue settings, notifications and
environment variables as a deployment gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
NO_VALUE = object()
"""`AWS::NoValue`: removes the property or list item it stands in."""


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`...)."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_TemplateLoader)  # noqa: S506  # SafeLoader subclass
    return loaded


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameters and the resources created so far."""

    template: dict[str, Any]
    parameters: dict[str, Any]
    pseudo: dict[str, str]
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            handler = self._functions().get(name)
            if handler is not None:
                return handler(argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _functions(self) -> Mapping[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": lambda argument: self.attributes[(argument[0], argument[1])],
            "Fn::Sub": self._sub,
            "Fn::If": lambda argument: self.resolve(argument[1] if self.condition(argument[0]) else argument[2]),
            "Fn::Join": lambda argument: str(argument[0]).join(str(part) for part in self.resolve(argument[1])),
            "Fn::Split": lambda argument: str(self.resolve(argument[1])).split(argument[0]),
            "Fn::Select": lambda argument: self.resolve(argument[1])[int(argument[0])],
            "Fn::Equals": lambda argument: self.resolve(argument[0]) == self.resolve(argument[1]),
            "Fn::Not": lambda argument: not self.resolve(argument[0]),
            "Fn::And": lambda argument: all(self.resolve(item) for item in argument),
            "Fn::Or": lambda argument: any(self.resolve(item) for item in argument),
            "Condition": self.condition,
        }

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"Ref {name}: no such parameter, or resource not created yet")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {key: self.resolve(item) for key, item in variables.items()}
        out, rest = "", text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out += before
            if name in values:
                out += str(values[name])
            elif "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                out += str(self.attributes[(resource, attribute)])
            else:
                out += str(self._ref(name))
        return out + rest


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    defaults = {}
    for name, declaration in template.get("Parameters", {}).items():
        if "Default" in declaration:
            default = declaration["Default"]
            if declaration.get("Type") == "CommaDelimitedList" and isinstance(default, str):
                default = [part.strip() for part in default.split(",") if part.strip()]
            defaults[name] = default
    return defaults
