"""Reading `config.yaml`: YAML with the line of every key, environment variables substituted
as Docker Compose does, and validation errors told as `file:line: field: problem`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import yaml
from pydantic import ValidationError

# `${NAME}`, `${NAME:-default}`, `$NAME`, and `$$` for a literal `$`; any other `${` is a
# mistake, never text to send upstream.
_REFERENCE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$)|(?P<broken>\{[^}]*\}?))"
)


class ConfigError(Exception):
    """The configuration cannot be served; the message says what and where."""


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key."""


class _Mapping(dict[str, object]):
    lines: dict[str, int] = {}  # noqa: RUF012 - replaced per instance by the loader


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def substitute(text: str, environ: Mapping[str, str]) -> str:
    """Replace `${VAR}`, `${VAR:-default}` and `$VAR` in one string; `$$` is a `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group("dollar"):
            return "$"
        if match.group("broken") is not None:
            raise ConfigError(
                f"{match.group(0)!r} is not a variable reference: write ${{NAME}} or "
                "${NAME:-default}, or $$ for a literal $"
            )
        name = match.group("braced") or match.group("bare")
        default = match.group("default")
        if default is not None:  # as in the shell: the default also replaces an empty value
            return environ.get(name) or default
        if name in environ:
            return environ[name]
        written = f"${{{name}}}" if match.group("braced") else f"${name}"
        raise ConfigError(f"environment variable {name} is not set (used as {written})")

    return _REFERENCE.sub(replace, text)


def variables_in(text: str) -> tuple[str, ...]:
    """The environment variables `text` refers to, in order."""
    found = (m.group("braced") or m.group("bare") for m in _REFERENCE.finditer(text))
    return tuple(name for name in found if name)


def read_tree(text: str, source: str) -> dict[str, object]:
    """The YAML document, each mapping knowing the line of its keys."""
    try:
        tree = yaml.load(text, Loader=_LineLoader) or _Mapping()  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return tree


def substitute_tree(node: object, environ: Mapping[str, str], source: str) -> object:
    """`node` with every string's variables substituted. Every reference that can't be is
    reported at once, each as `source:line: field: problem`."""
    problems: list[str] = []

    def report(at: tuple[int | str, ...], line: int | None, problem: str) -> None:
        where = f"{source}:{line}" if line else source
        problems.append(f"{where}: {'.'.join(str(part) for part in at)}: {problem}")

    substituted = _substitute(node, environ, (), None, report)
    if problems:
        raise ConfigError("invalid configuration\n  " + "\n  ".join(problems))
    return substituted


def _substitute(
    node: object,
    environ: Mapping[str, str],
    at: tuple[int | str, ...],
    line: int | None,
    report: Callable[[tuple[int | str, ...], int | None, str], None],
) -> object:
    if isinstance(node, _Mapping):
        result = _Mapping(
            {
                key: _substitute(value, environ, (*at, key), node.lines.get(key, line), report)
                for key, value in node.items()
            }
        )
        result.lines = node.lines
        return result
    if isinstance(node, list):
        return [
            _substitute(item, environ, (*at, index), line, report)
            for index, item in enumerate(node)
        ]
    if isinstance(node, str):
        try:
            return substitute(node, environ)
        except ConfigError as exc:
            report(at, line, str(exc))
    return node


def _locate(tree: object, loc: tuple[int | str, ...]) -> tuple[tuple[int | str, ...], int | None]:
    """The error's path through the YAML (union labels such as `str` or `ApiKey` dropped, since
    they are no keys of the document) and the line of its last key."""
    path: list[int | str] = []
    line = None
    node = tree
    for part in loc:
        if isinstance(part, str) and _is_union_label(part, node):
            continue
        if isinstance(node, _Mapping) and isinstance(part, str):
            line = node.lines.get(part, line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        path.append(part)
    return tuple(path), line


def _is_union_label(part: str, node: object) -> bool:
    """pydantic names union members in locations (`str`, `ApiKey`, `list[str]`)."""
    if isinstance(node, _Mapping) and part in node:
        return False
    return "[" in part or part[:1].isupper() or part in ("str", "int", "float", "bool")


def describe(error: ValidationError, tree: object, source: str) -> str:
    """Every problem of a config that did not validate, one line each, with its place."""
    located = [(*_locate(tree, tuple(item["loc"])), item) for item in error.errors()]
    problems = []
    for path, line, item in located:
        # A union reports every member's complaint; keep the one that went deepest.
        if any(other[: len(path)] == path and len(other) > len(path) for other, _, _ in located):
            continue
        dotted = ".".join(str(part) for part in path)
        at = f"{source}:{line}: " if line else f"{source}: "
        if item["type"] == "extra_forbidden":
            problems.append(f"{at}unknown key {dotted!r}")
        else:
            problems.append(f"{at}{dotted}: {item['msg']}")
    return "invalid configuration\n  " + "\n  ".join(dict.fromkeys(problems))


def api_key_variables(raw_models: object) -> list[tuple[str, ...]]:
    """For each raw model entry, the variables its `api_key` was written with."""
    if not isinstance(raw_models, list):
        return []
    found = []
    for entry in raw_models:
        raw = entry.get("api_key") if isinstance(entry, dict) else None
        found.append(variables_in(raw) if isinstance(raw, str) else ())
    return found
