"""The public surface is pinned: adding or dropping a name is a decision, not an accident."""

from __future__ import annotations

import tinyws
import tinyws.guards
import tinyws.testing


def test_top_level_exports() -> None:
    assert sorted(tinyws.__all__) == [
        "App",
        "HTTPError",
        "Request",
        "Response",
        "WebSocket",
        "WebSocketDisconnect",
        "WebSocketStateError",
        "__version__",
    ]
    for name in tinyws.__all__:
        assert getattr(tinyws, name) is not None


def test_spec_imports() -> None:
    from tinyws import App, HTTPError, Request, Response, WebSocket, WebSocketDisconnect  # noqa: F401
    from tinyws.guards import allow_origins, bearer_token  # noqa: F401
    from tinyws.server import serve  # noqa: F401
    from tinyws.testing import TestClient, WebSocketDenied  # noqa: F401


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("tinyws").joinpath("py.typed").is_file()
