"""Response: construction, validation and the bytes-level headers it sends."""

from __future__ import annotations

import pytest

from tests.asgi import drive, http_scope
from tinyws import App, Request, Response

pytestmark = pytest.mark.anyio


def test_defaults_and_content_types() -> None:
    assert Response("hé").raw_headers() == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"3"),
    ]
    assert Response(b"\x00").raw_headers()[0] == (b"content-type", b"application/octet-stream")
    assert Response.json({"a": "é"}).body == '{"a":"é"}'.encode()
    assert Response.text("t", 202).status == 202
    assert Response(status=304).raw_headers() == []


@pytest.mark.parametrize("status", [100, 101, 199, 600, 0, -1, "200", 200.0, True])
def test_status_outside_200_to_599_is_refused(status: object) -> None:
    with pytest.raises(ValueError, match=r"status must be an int in 200\.\.599"):
        Response(status=status)  # type: ignore[arg-type]
    response = Response()
    with pytest.raises(ValueError):
        response.status = status  # type: ignore[assignment]
    assert response.status == 200  # unchanged


@pytest.mark.parametrize(
    "headers",
    [
        {"x-a": "1\r\nx-b: 2"},
        {"x-a": "line\nbreak"},
        {"x-a": "carriage\rreturn"},
        [("x-a\r\nx-b", "1")],
        [("bad name", "1")],
        [("x-a", "nul\x00")],
    ],
)
def test_header_injection_is_refused(headers: object) -> None:
    with pytest.raises(ValueError):
        Response(headers=headers)  # type: ignore[arg-type]
    response = Response()
    for name, value in dict(headers).items():  # type: ignore[call-overload]
        with pytest.raises(ValueError):
            response.headers[name] = value
    assert response.headers.raw == []


def test_non_str_headers_and_bodies_are_type_errors() -> None:
    with pytest.raises(TypeError):
        Response(headers={"x": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes or str"):
        Response(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not latin-1"):
        Response(headers={"x": "日本"})


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    response = Response(headers=[("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    response.headers.append("Vary", "Origin")
    response.headers["X-One"] = "1"
    response.headers["x-one"] = "2"
    assert response.headers.getall("SET-COOKIE") == ["a=1", "b=2"]
    assert response.headers["X-ONE"] == "2"
    del response.headers["vary"]
    assert "vary" not in response.headers


def test_content_length_is_recomputed_from_the_body() -> None:
    response = Response("abc", headers={"content-length": "99"})
    response.body = "abcdef"
    assert response.raw_headers() == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"6"),
    ]


async def test_head_requests_get_headers_only() -> None:
    app = App()

    @app.route("/", methods=["HEAD"])
    def head(req: Request) -> str:
        return "body"

    sent = await drive(app, http_scope("HEAD", "/"))
    assert sent[0]["headers"][-1] == (b"content-length", b"4")
    assert sent[1] == {"type": "http.response.body", "body": b""}
