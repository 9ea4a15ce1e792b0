"""Path templates and the router.

A template is compiled once, at registration, into either a plain string
(static paths, found with one dict lookup) or a regex with converters.
Lookups try static paths first, then templated ones in registration order.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

H = TypeVar("H")

_PARAM = re.compile(r"{([^{}]*)}")


@dataclass(frozen=True)
class Converter:
    pattern: str
    convert: Callable[[str], Any]


CONVERTERS: dict[str, Converter] = {
    "str": Converter(r"[^/]+", str),
    "int": Converter(r"-?[0-9]+", int),
    "float": Converter(r"-?[0-9]+(?:\.[0-9]+)?", float),
    "uuid": Converter(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        uuid.UUID,
    ),
    "path": Converter(r"(?s:.*)", str),  # newlines too: a path may hold a decoded %0A
}


@dataclass
class Template:
    """A compiled path template such as ``/rooms/{room}/{n:int}``."""

    source: str
    shape: str  # the template with names erased: two templates of one shape match the same paths
    regex: re.Pattern[str] | None  # None for a static path
    converters: dict[str, Callable[[str], Any]]
    # Every parameter is a plain string: the regex's groupdict is the answer.
    plain: bool = False

    def match(self, path: str) -> dict[str, Any] | None:
        if self.regex is None:
            return {} if path == self.source else None
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        if self.plain:
            return found.groupdict()
        try:
            return {name: self.converters[name](value) for name, value in found.groupdict().items()}
        except ValueError:  # e.g. more digits than int() takes: a 404, not a 500
            return None


def compile_template(source: str) -> Template:
    if not isinstance(source, str) or not source.startswith("/"):
        raise ValueError(f"route path {source!r} must be a str starting with '/'")
    pattern, shape, converters = [], [], {}
    position = 0
    for found in _PARAM.finditer(source):
        literal = source[position : found.start()]
        _check_literal(source, literal)
        pattern.append(re.escape(literal))
        shape.append(literal)
        name, _, kind = found.group(1).partition(":")
        kind = kind or "str"
        if not name.isidentifier():
            raise ValueError(f"route path {source!r}: {{{found.group(1)}}} needs a valid name")
        if name in converters:
            raise ValueError(f"route path {source!r}: parameter {name!r} appears twice")
        if kind not in CONVERTERS:
            known = ", ".join(CONVERTERS)
            raise ValueError(f"route path {source!r}: unknown converter {kind!r} (known: {known})")
        if kind == "path" and found.end() != len(source):
            raise ValueError(f"route path {source!r}: a {{name:path}} must end the template")
        converter = CONVERTERS[kind]
        pattern.append(f"(?P<{name}>{converter.pattern})")
        shape.append(f"{{{kind}}}")
        converters[name] = converter.convert
        position = found.end()
    tail = source[position:]
    _check_literal(source, tail)
    if not converters:
        return Template(source, source, None, {})
    pattern.append(re.escape(tail))
    shape.append(tail)
    plain = all(convert is str for convert in converters.values())
    return Template(source, "".join(shape), re.compile("".join(pattern)), converters, plain)


def _check_literal(source: str, literal: str) -> None:
    if "{" in literal or "}" in literal:
        raise ValueError(f"route path {source!r} has an unbalanced '{{' or '}}'")


@dataclass
class Route(Generic[H]):
    """One path template and what answers on it: a handler per method or one WebSocket."""

    template: Template
    handlers: dict[str, H] = field(default_factory=dict)


class Table(Generic[H]):
    """Routes of one kind (HTTP or WebSocket), keyed by path then by method."""

    def __init__(self) -> None:
        self._static: dict[str, Route[H]] = {}
        self._templated: list[Route[H]] = []
        self._by_source: dict[str, Route[H]] = {}
        # Templates that differ only in names match the same paths: track by shape.
        self._taken: dict[str, dict[str, str]] = {}

    def add(self, path: str, methods: Sequence[str], handler: H, what: str) -> None:
        """Register ``handler`` for every one of ``methods``, or for none if one is taken."""
        template = compile_template(path)
        taken = self._taken.setdefault(template.shape, {})
        for method in methods:
            if method in taken:
                raise ValueError(
                    f"duplicate route: {what.format(method=method)} {path!r} "
                    f"is already registered as {taken[method]!r}"
                )
        taken.update(dict.fromkeys(methods, path))
        route = self._by_source.get(path)
        if route is None:
            route = self._by_source[path] = Route(template)
            if template.regex is None:
                self._static[path] = route
            else:
                self._templated.append(route)
        route.handlers.update(dict.fromkeys(methods, handler))

    def find(self, path: str, method: str) -> tuple[H | None, dict[str, Any], tuple[str, ...]]:
        """The handler for ``method`` on ``path``, its params, and the methods the path allows.

        One walk serves both tables: a path that matches with another method
        is remembered for a 405 while later templates may still match fully
        (as in Starlette); the WebSocket table has one method, so its third
        item stays empty.
        """
        allowed: tuple[str, ...] = ()
        route = self._static.get(path)
        if route is not None:
            handler = route.handlers.get(method)
            if handler is not None:
                return handler, {}, allowed
            allowed = tuple(route.handlers)
        for route in self._templated:
            params = route.template.match(path)
            if params is None:
                continue
            handler = route.handlers.get(method)
            if handler is not None:
                return handler, params, allowed
            allowed += tuple(route.handlers)
        return None, {}, allowed


__all__ = ["CONVERTERS", "Route", "Table", "Template", "compile_template"]
