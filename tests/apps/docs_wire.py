"""The app behind the wire facts the docs quote (tests/test_docs.py).

- ``/early``: the handler closes before accepting (``"http"`` mode): each
  server answers that close with a 403 of its own making;
- ``/denied``: a guard raises ``HTTPError(401)``: a denial sent through the
  ``websocket.http.response`` extension where the server offers it;
- ``/closing``: the same refusal on a ``denial="close"`` route: 101, then a
  close frame 4401;
- ``/where`` (HTTP): the routed path and the URL, to see a mount point.
"""

from __future__ import annotations

from tinyws import App, HTTPError, Request, WebSocket

app = App()


def refuse(req: Request) -> None:
    raise HTTPError(401)


@app.websocket("/early")
async def early(ws: WebSocket) -> None:
    await ws.close(4001, "never seen")


@app.websocket("/denied", guard=refuse)
async def denied(ws: WebSocket) -> None:
    await ws.accept()  # never reached: the guard refuses


@app.websocket("/closing", guard=refuse, denial="close")
async def closing(ws: WebSocket) -> None:
    await ws.accept()  # never reached: the guard refuses


@app.get("/where")
async def where(req: Request) -> dict[str, str]:
    return {"path": req.path, "url": req.url}
