"""Find the app that ``tinyws serve module:attr`` names, and check that it is one.

Every failure is a :class:`LoadError` whose message is one line naming the
culprit; the command prints it and exits 2 (the traceback, when there is one,
is the error's ``__cause__``, shown at ``--log-level debug``).

What counts as an ASGI app is decided once, before the server starts, from
the object alone (nothing is called):

- a class is never an app: ASGI 3 apps are functions or instances, and a
  class called with ``(scope, receive, send)`` would build an object, not
  serve the request (``--factory`` calls a class with no arguments instead);
- otherwise the object must be callable with three positional arguments
  (``inspect.signature``, which reads a plain function or an instance's
  ``__call__``): a factory such as ``def create_app()`` takes none;
- and ``async def`` (``inspect.iscoroutinefunction`` on the function, the
  partial or ``__call__``): a plain ``def`` would hand the server ``None``
  to await. A wrapper that returns an awaitable from a plain ``def`` must
  say so with ``inspect.markcoroutinefunction`` (Python 3.12+);
- a callable whose signature Python cannot read (some C or Cython types)
  is given the benefit of the doubt.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import Any

from tinyws.types import ASGIApp

# Frames of the import machinery are never the place to look at.
_IMPORTLIB = os.path.dirname(importlib.__file__ or "") + os.sep


class LoadError(Exception):
    """Raised when ``module:attr`` does not lead to an ASGI app; the message is one line."""


def load_app(spec: str, *, factory: bool = False) -> ASGIApp:
    """Import ``module:attr`` (the current directory is importable, as with uvicorn)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise LoadError(f"cannot load {spec!r}: expected MODULE:ATTR, such as 'myapp:app'")
    target: Any = _import(module_name)
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LoadError(f"cannot load {spec!r}: {module_name} has no {attr!r}") from None
    if factory:
        target = _call_factory(spec, target)
    problem = asgi_problem(target)
    if problem is not None:
        made = "--factory returned" if factory else "it is"
        raise LoadError(f"{spec!r} is not an ASGI app: {made} {problem}")
    app: ASGIApp = target
    return app


def asgi_problem(obj: object) -> str | None:
    """Say what ``obj`` is when it is not an ASGI 3 app (see the module's rule), else None."""
    if isinstance(obj, type):
        return f"a class, {obj.__qualname__}; serve an instance, or add --factory to call it"
    if not callable(obj):
        return describe(obj)
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # no signature to read: cannot tell, so accept
        return None
    name = getattr(obj, "__qualname__", type(obj).__qualname__)
    try:
        signature.bind(None, None, None)
    except TypeError:
        if not signature.parameters:
            return f"a callable taking no arguments, {name}(); if it makes the app, add --factory"
        return f"a callable {name}{signature}, not (scope, receive, send)"
    if not _is_async(obj):
        return f"a plain def callable, {name}{signature}; an ASGI app is async def"
    return None


def describe(obj: object) -> str:
    """Name a value by its type and a short repr, as in 'an int (42)'."""
    kind = type(obj).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    shown = repr(obj)
    return f"{article} {kind} ({shown if len(shown) <= 40 else shown[:37] + '...'})"


def _is_async(obj: object) -> bool:
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - the method itself is what we inspect
    return call is not None and inspect.iscoroutinefunction(call)


def _import(module_name: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and _is_prefix(exc.name, module_name):
            raise LoadError(f"cannot import {module_name!r}: {exc}") from exc
        raise LoadError(f"cannot import {module_name!r} ({where(exc)}): {_what(exc)}") from exc
    except Exception as exc:  # whatever the module raised while running its body
        raise LoadError(f"cannot import {module_name!r} ({where(exc)}): {_what(exc)}") from exc


def _call_factory(spec: str, target: object) -> object:
    if not callable(target):
        raise LoadError(
            f"{spec!r} is not callable, so --factory cannot call it: {describe(target)}"
        )
    try:
        return target()
    except Exception as exc:
        raise LoadError(f"{spec!r} --factory call failed ({where(exc)}): {_what(exc)}") from exc


def _is_prefix(name: str, module_name: str) -> bool:
    """Whether the missing module is the one asked for or a package on its way."""
    return module_name == name or module_name.startswith(name + ".")


def where(exc: BaseException) -> str:
    """Return 'file:line' of a syntax error, or of the innermost frame outside importlib."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_short(exc.filename)}:{exc.lineno}"
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(("<frozen ", _IMPORTLIB)) and frame.filename != __file__
    ]
    if not frames:
        return "unknown place"
    return f"{_short(frames[-1].filename)}:{frames[-1].lineno}"


def _what(exc: BaseException) -> str:
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _short(path: str) -> str:
    here = os.getcwd() + os.sep
    return path[len(here) :] if path.startswith(here) else path
