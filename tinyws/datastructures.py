"""Small containers shared by requests, responses and the test client."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued, read-only view of HTTP headers.

    Built from ASGI's list of ``(bytes, bytes)`` pairs. ``headers[name]`` and
    ``get()`` give the first value; ``getall()`` gives every value in order.
    Decoding is latin-1, as HTTP/1.1 defines for header bytes.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._raw = [(k.lower(), v) for k, v in raw]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls((k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs)

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return list(self._raw)

    def __getitem__(self, name: str) -> str:
        key = name.lower().encode("latin-1")
        for k, v in self._raw:
            if k == key:
                return v.decode("latin-1")
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower().encode("latin-1")
        return any(k == key for k, _ in self._raw)

    def getall(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._raw if k == key]

    def items(self) -> ItemsView[str, str]:
        """Every ``(name, value)`` pair in order, repeated names included."""
        return _AllItems(self)

    def multi_items(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw]

    def __iter__(self) -> Iterator[str]:
        seen: dict[bytes, None] = dict.fromkeys(k for k, _ in self._raw)
        return (k.decode("latin-1") for k in seen)

    def __len__(self) -> int:
        return len({k for k, _ in self._raw})

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"


class _AllItems(ItemsView[str, str]):
    """``Headers.items()``: a mapping's items view that keeps repeated names."""

    def __init__(self, headers: Headers) -> None:
        super().__init__(headers)
        self._headers = headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._headers.multi_items())

    def __len__(self) -> int:
        return len(self._headers._raw)

    def __contains__(self, item: object) -> bool:
        return item in self._headers.multi_items()

    def __repr__(self) -> str:
        return f"HeadersItems({self._headers.multi_items()!r})"


class QueryParams(Mapping[str, str]):
    """Parsed query string: ``get()`` gives the first value, ``getall()`` every one."""

    __slots__ = ("_pairs",)

    def __init__(self, query_string: bytes | str = b"") -> None:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        self._pairs = parse_qsl(text, keep_blank_values=True)

    def __getitem__(self, name: str) -> str:
        for k, v in self._pairs:
            if k == name:
                return v
        raise KeyError(name)

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._pairs))

    def __len__(self) -> int:
        return len({k for k, _ in self._pairs})

    def __repr__(self) -> str:
        return f"QueryParams({self._pairs!r})"


class Namespace:
    """Attribute *and* item access over one dict.

    ``req.context`` and ``req.state`` are namespaces: ``ctx.user`` and
    ``ctx["user"]`` name the same value, as Starlette's state and Falcon's
    context users expect.
    """

    # The dict is the instance's own ``__dict__``: attribute access then runs
    # at native speed, and a context is made on every request that uses one.

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        if data is not None:
            self.__dict__ = data

    if TYPE_CHECKING:  # any attribute may be set and read

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __delitem__(self, name: str) -> None:
        del self.__dict__[name]

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __len__(self) -> int:
        return len(self.__dict__)

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"


__all__ = ["Headers", "Namespace", "QueryParams"]
