"""A plain-data view of `terraform/` parsed with python-hcl2, for the offline deployment checks.

python-hcl2 keeps HCL's quoting (`"\\"clickhouse\\""` for a literal, `"${var.x}"` for an expression)
and annotates blocks and comments (`__is_block__`, `__comments__`); this module strips both so
checks compare plain values.
Expressions stay strings such as `${local.functions}`: nothing is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

TERRAFORM_DIR = Path(__file__).resolve().parents[1] / "terraform"


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def normalize(value: Any) -> Any:
    if isinstance(value, dict):
        # python-hcl2 annotations (`__is_block__`, `__comments__`, `__inline_comments__`, ...) are not HCL
        return {_unquote(k): normalize(v) for k, v in value.items() if not (k.startswith("__") and k.endswith("__"))}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    body: dict[str, Any]
    file: Path

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    def block(self, name: str) -> dict[str, Any] | None:
        """The first nested block `name`, or None."""
        found = self.body.get(name)
        return found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else None


@dataclass
class TerraformConfig:
    files: dict[Path, dict[str, Any]]
    resources: list[Resource] = field(default_factory=list)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources if r.type == resource_type]

    def resource(self, address: str) -> Resource:
        for resource in self.resources:
            if resource.address == address:
                return resource
        raise KeyError(address)


def load(directory: Path = TERRAFORM_DIR) -> TerraformConfig:
    """Parse every `.tf` file (raises on any syntax error)."""
    files: dict[Path, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*.tf")):
        with path.open() as handle:
            files[path] = normalize(hcl2.load(handle))
    config = TerraformConfig(files)
    for path, document in files.items():
        for entry in document.get("resource", []):
            for resource_type, named in entry.items():
                for name, body in named.items():
                    config.resources.append(Resource(resource_type, name, body, path))
        for block in document.get("locals", []):
            duplicate = set(block) & set(config.locals)
            if duplicate:
                raise ValueError(f"local(s) {sorted(duplicate)} defined twice ({path.name})")
            config.locals.update(block)
        for entry in document.get("variable", []):
            config.variables.update(entry)
    return config


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a parsed value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value
