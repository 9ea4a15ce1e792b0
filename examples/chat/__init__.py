"""A chat a person can use in a browser: a page, a login, rooms over a guarded WebSocket.

    tinyws serve examples.chat:app
    # open http://127.0.0.1:8000/ (or http://localhost:8000/), pick a name and a room

What it serves:

- ``GET /``: the page (plain HTML and JavaScript, no build step, nothing
  fetched from elsewhere). Its form logs in, then opens
  ``ws://<same host>/rooms/<room>``. (The route speaks subprotocol
  ``chat.v1`` to clients that offer it; the page offers none, see README.md.)
- ``POST /login`` with ``{"name": "ann"}``: issues a session token for that
  name, answered as an ``HttpOnly`` cookie ``session`` (which the browser
  then sends on the handshake) and in the JSON body, for other clients.
  There are no passwords; the tokens live in memory until the server stops.
- ``/rooms/{room}`` (``lobby`` or ``dev``), guarded in this order:
  ``allow_origins`` (the page's own origin: the address the server listens on
  unless ``CHAT_ORIGINS`` lists others), ``bearer_token(verify,
  query="token", cookie="session")`` (``Authorization: Bearer`` wins, then
  ``?token=``, then the cookie) and the room's existence. The app's denial
  mode is ``"auto"``: a browser is refused with close code 4403, 4401 or 4404
  and the reason, which the page shows; a client without ``Origin`` gets HTTP
  403, 401 (with ``WWW-Authenticate: Bearer``) or 404 with a JSON body.
- Messages: the client sends text; the server sends JSON events
  ``welcome`` (to the joiner: its name, the room, who is there), ``joined``,
  ``message`` (``name``, ``text``) and ``left`` to everyone in the room,
  the joiner and the sender included.
- Rooms are channels of a ``tinyws.broadcast`` hub whose URL is
  ``TINYWS_BROADCAST`` (default ``memory://``). With ``redis://`` and the
  same ``CHAT_SECRET`` everywhere, the chat runs unchanged over several
  processes: ``tinyws serve examples.chat:app --workers 2``.

A page opened as ``/?token=T`` skips the login and joins with token ``T``
(for a token issued to another client; a token in an address ends up in the
browser's history and in access logs, so it is a demo convenience).

See README.md beside this file for the details and the choices behind them.
"""

from examples.chat.routes import make_app

app = make_app()

__all__ = ["app", "make_app"]
