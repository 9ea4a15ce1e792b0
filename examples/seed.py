"""The seed scenario: a guarded WebSocket whose refusal is a real 404 with JSON.

tinyws serve examples.seed:app
# ws://127.0.0.1:8000/foo?token=good echoes; any other token gets HTTP 404.
"""

from tinyws import App, HTTPError, Request, WebSocket

app = App()


def known_token(req: Request) -> None:
    if req.query.get("token") != "good":
        raise HTTPError(404, "Not Found", "no such endpoint for this token")


@app.websocket("/foo", guard=known_token)
async def foo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)
