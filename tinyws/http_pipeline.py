"""The HTTP request pipeline, with Falcon's middleware orders (SPEC section 5).

    process_request (in order) -> route -> process_resource (in order)
        -> handler -> process_response (reverse order)

``process_response`` runs for every middleware the request reached, even
when a hook or the handler raised. ``resp.complete`` short-circuits as in
Falcon: set in ``process_request`` it skips the remaining ``process_request``
hooks, routing, ``process_resource`` and the handler (the middleware after
the one that set it were never reached); set in ``process_resource`` it skips
the remaining ``process_resource`` hooks and the handler.

Headers that middleware put on ``resp`` before the handler (a request id,
CORS) survive the handler's response and error responses; on a clash the
later response's value wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinyws.concurrency import AsyncCallable
from tinyws.denial import error_response, internal_error
from tinyws.errors import HTTPError
from tinyws.middleware import Chain
from tinyws.request import Request
from tinyws.response import MutableHeaders, Response
from tinyws.routing import Table
from tinyws.types import Send

logger = logging.getLogger("tinyws")


@dataclass(frozen=True)
class HTTPRoute:
    endpoint: Callable[..., Any]  # as the user wrote it: what process_resource sees
    call: AsyncCallable


def to_response(result: object) -> Response:
    """A handler's return value as a response."""
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status=204)
    if isinstance(result, dict | list):
        return Response.json(result)
    if isinstance(result, str):
        return Response.text(result)
    if isinstance(result, bytes):
        return Response(result)
    raise TypeError(
        f"a handler returns dict, list, str, bytes, None or a Response, got {type(result).__name__}"
    )


class HTTPPipeline:
    """One request on its way through the chain, and what it has reached so far."""

    def __init__(self, req: Request, chain: Chain, routes: Table[HTTPRoute]) -> None:
        self.req = req
        self.resp = Response()
        self.chain = chain
        self.routes = routes
        self.resource: Callable[..., Any] | None = None
        self.reached = 0  # how many middleware (by list position) saw process_request
        self.crash: Exception | None = None

    async def run(self, send: Send) -> None:
        succeeded = await self._attempt(self._request_and_route)
        for position, hook in self.chain.response:
            if position < self.reached:
                ok = await self._attempt(hook, self.req, self.resp, self.resource, succeeded)
                succeeded = succeeded and ok
        await self.resp.send_http(send, head_only=self.req.method == "HEAD")

    async def _attempt(self, step: AsyncCallable, *args: Any) -> bool:
        """Run a step; an error it raises becomes the response. True if none did."""
        try:
            await step(*args)
        except HTTPError as exc:
            self._answer(error_response(exc))
            return False
        except Exception as exc:
            logger.exception("error while handling %s %s", self.req.method, self.req.path)
            self._answer(internal_error())
            self.crash = self.crash or exc
            return False
        return True

    async def _request_and_route(self) -> None:
        for position, hook in self.chain.request:
            self.reached = position + 1
            await hook(self.req, self.resp)
            if self.resp.complete:
                return
        self.reached = self.chain.size
        await self._route()

    async def _route(self) -> None:
        req = self.req
        route, params, allowed = self.routes.find(req.path, req.method)
        req.params = params
        self.resource = route.endpoint if route is not None else None
        for hook in self.chain.resource:
            await hook(req, self.resp, self.resource, params)
            if self.resp.complete:
                return
        if route is None:
            if allowed:
                raise HTTPError(405, headers={"Allow": ", ".join(sorted(allowed))})
            raise HTTPError(404)
        self._answer(to_response(await route.call(req, **params)))

    def _answer(self, response: Response) -> None:
        """Make ``response`` the answer, keeping the headers set on ``resp`` that it lacks.

        The headers are copied: a handler may return the same ``Response`` object
        every time, and ``process_response`` must not change it for later requests.
        """
        own = {name for name, _ in response.headers.raw}
        kept = [pair for pair in self.resp.headers.raw if pair[0] not in own]
        self.resp.replace_with(response)
        self.resp.headers = MutableHeaders(kept + response.headers.raw)


__all__ = ["HTTPPipeline", "HTTPRoute", "to_response"]
