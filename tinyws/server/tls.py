"""TLS as a sans-IO layer between the socket and the connection core.

Bytes from the socket go in (`receive`), plaintext comes out; plaintext goes
in (`send`), bytes for the socket come out (`data_to_send`). No socket and
no `await`: OpenSSL runs over two `ssl.MemoryBIO`s through an `SSLObject`,
so the same layer serves raw non-blocking sockets on asyncio and trio and is
tested without a network.

The layer moves through these states (transitions in `_MOVES`):

    HANDSHAKE --handshake done--> OPEN --close_notify/EOF--> CLOSED
        |                           |
        +--error--> FAILED          +--error--> FAILED

A failure keeps one short reason string and a `TLSFailure` kind, never a
traceback: a port scanner must not flood the log. A first byte that cannot
start a TLS handshake record (0x16) is `NOT_TLS` at once, without waiting
for more bytes or asking OpenSSL; the runtime writes out whatever alert the
layer has queued (`data_to_send`) and closes.
"""

from __future__ import annotations

import contextlib
import enum
import re
import ssl

__all__ = ["TLSFailure", "TLSLayer", "TLSState", "build_ssl_context"]

_READ = 64 * 1024
_HANDSHAKE_RECORD = 0x16
_HTTP_METHODS = (b"GET ", b"POST", b"PUT ", b"HEAD", b"OPTI", b"DELE", b"PATC", b"CONN", b"PRI ")


class TLSState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


class TLSFailure(enum.Enum):
    """Why a TLS connection failed, for the one log line and for counting."""

    #: The first bytes are not a TLS handshake record (plain HTTP, a scanner).
    NOT_TLS = "not TLS"
    #: The client went away before the handshake completed.
    EOF = "closed during handshake"
    #: A certificate was refused: ours by the client (an alert such as
    #: unknown_ca), or the client's by us (`--ssl-ca-certs`).
    CERTIFICATE = "certificate"
    #: Anything else OpenSSL refused: versions, ciphers, malformed records.
    PROTOCOL = "protocol"


_MOVES: dict[TLSState, frozenset[TLSState]] = {
    TLSState.HANDSHAKE: frozenset({TLSState.OPEN, TLSState.FAILED}),
    TLSState.OPEN: frozenset({TLSState.CLOSED, TLSState.FAILED}),
    TLSState.CLOSED: frozenset(),
    TLSState.FAILED: frozenset(),
}


class TLSLayer:
    """Server side of one TLS connection; see the module docstring."""

    __slots__ = ("_fresh", "_in", "_notified", "_obj", "_out", "failure", "reason", "state")

    def __init__(self, context: ssl.SSLContext) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=True)
        self.state = TLSState.HANDSHAKE
        self._fresh = True  # no byte received yet: the next one must start a handshake record
        self._notified = False  # our close_notify is queued
        self.failure: TLSFailure | None = None
        #: One short line saying why the connection failed ("" while it has not).
        self.reason = ""

    @property
    def established(self) -> bool:
        return self.state is TLSState.OPEN

    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the socket (b"": the client closed its side);
        returns the plaintext they complete. After the call, `state` says
        whether the handshake finished, failed, or the client closed."""
        if self.state in (TLSState.CLOSED, TLSState.FAILED):
            return b""
        if not data:
            self._in.write_eof()
        elif self._fresh and not self._first_ok(data):
            return b""
        else:
            self._in.write(data)
        self._fresh = False
        if self.state is TLSState.HANDSHAKE and not self._handshake():
            return b""
        return self._read()

    def send(self, plaintext: bytes) -> None:
        """Encrypt `plaintext` once the handshake is done; `data_to_send()` has the bytes."""
        if self.state is not TLSState.OPEN:
            raise RuntimeError(f"TLS send in state {self.state.value}")
        try:
            self._obj.write(plaintext)
        except ssl.SSLError as exc:
            self._fail(TLSFailure.PROTOCOL, _reason(exc))

    def close(self) -> None:
        """Queue our close_notify, also in answer to the client's (best
        effort: the client's is not awaited)."""
        if self.state in (TLSState.OPEN, TLSState.CLOSED) and not self._notified:
            self._notified = True
            # SSLWantReadError: ours is queued, the peer's is not in yet;
            # SSLEOFError: the client left without one, ours is queued anyway.
            with contextlib.suppress(ssl.SSLError):
                self._obj.unwrap()
            if self.state is TLSState.OPEN:
                self._move(TLSState.CLOSED)

    def data_to_send(self) -> bytes:
        """Bytes for the socket: handshake records, ciphertext, alerts."""
        return self._out.read()

    def version(self) -> str | None:
        """The negotiated protocol ("TLSv1.3"), once the handshake is done."""
        return self._obj.version()

    def cipher(self) -> str | None:
        info = self._obj.cipher()
        return info[0] if info else None

    def peer_certificate(self) -> bytes | None:
        """The client's certificate (DER), when it sent one that verified."""
        return self._obj.getpeercert(binary_form=True)

    # -- internals ----------------------------------------------------------

    def _first_ok(self, data: bytes) -> bool:
        if data[0] == _HANDSHAKE_RECORD:
            return True
        what = "plain HTTP" if data[:4] in _HTTP_METHODS else f"first byte 0x{data[0]:02x}"
        self._fail(TLSFailure.NOT_TLS, f"not a TLS ClientHello ({what})")
        return False

    def _handshake(self) -> bool:
        try:
            self._obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLEOFError:
            self._fail(TLSFailure.EOF, "client closed the connection during the TLS handshake")
            return False
        except ssl.SSLCertVerificationError as exc:
            self._fail(TLSFailure.CERTIFICATE, f"client certificate: {exc.verify_message}")
            return False
        except ssl.SSLError as exc:
            code = exc.reason or ""
            certificate = "CERTIFICATE" in code or code.endswith("UNKNOWN_CA")
            self._fail(TLSFailure.CERTIFICATE if certificate else TLSFailure.PROTOCOL, _reason(exc))
            return False
        self._move(TLSState.OPEN)
        return True

    def _read(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._obj.read(_READ)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._move(TLSState.CLOSED)  # close_notify, or a plain EOF: both end the stream
                break
            except ssl.SSLError as exc:
                self._fail(TLSFailure.PROTOCOL, _reason(exc))
                break
            if not chunk:
                self._move(TLSState.CLOSED)
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _fail(self, failure: TLSFailure, reason: str) -> None:
        self.failure = failure
        self.reason = reason
        self._move(TLSState.FAILED)

    def _move(self, state: TLSState) -> None:
        if state not in _MOVES[self.state]:
            raise RuntimeError(f"TLS layer cannot move from {self.state.value} to {state.value}")
        self.state = state


def _reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason in words: "client alert: unknown ca", "wrong version number"."""
    code = exc.reason
    if code is None:  # no reason code: the message without "[SSL] " and "(_ssl.c:123)"
        text = str(exc.args[1] if len(exc.args) > 1 else exc)
        return re.sub(r"^\[[^]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", text).lower()
    alert = re.match(r"(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)", code)
    if alert:  # the client told us what it disliked
        return "client alert: " + alert[1].lower().replace("_", " ")
    return code.lower().replace("_", " ")


def build_ssl_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
) -> ssl.SSLContext:
    """A server context: the stdlib's secure defaults, TLS 1.2 or newer, ALPN
    http/1.1, and client certificates asked for (not required) when
    `ca_certs` is given. `certfile` may hold the key too.

    Raises `ValueError` with one line naming the file that failed.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    # A callable, so that an encrypted key without a password fails here
    # instead of OpenSSL prompting on the terminal; and it tells us that the
    # key was encrypted, which OpenSSL's "PEM lib" error does not.
    asked: list[bool] = []

    def secret() -> str:
        asked.append(True)
        return password or ""

    try:
        context.load_cert_chain(certfile, keyfile, secret)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise ValueError(_load_error(exc, certfile, keyfile, password, bool(asked))) from None
    if ca_certs is not None:
        try:
            context.load_verify_locations(cafile=ca_certs)
        except OSError as exc:
            raise ValueError(f"ssl ca_certs {ca_certs}: {_os_reason(exc)}") from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _load_error(
    exc: OSError, certfile: str, keyfile: str | None, password: str | None, asked: bool
) -> str:
    if not isinstance(exc, ssl.SSLError):
        return f"cannot read {exc.filename or certfile}: {exc.strerror or exc}"
    key = f"ssl keyfile {keyfile}" if keyfile else f"ssl certfile {certfile}"
    if asked:
        return f"{key}: " + ("wrong password" if password else "encrypted key, no password given")
    if b"-----BEGIN CERTIFICATE-----" not in _peek(certfile):
        return f"ssl certfile {certfile}: no PEM certificate in it"
    if b"PRIVATE KEY-----" not in _peek(keyfile or certfile):
        return f"{key}: no PEM private key in it" + ("" if keyfile else " (give a keyfile)")
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"{key}: does not match the certificate in {certfile}"
    return f"ssl certfile {certfile}: cannot load the certificate and key ({_reason(exc)})"


def _peek(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(1 << 20)
    except OSError:
        return b""


def _os_reason(exc: OSError) -> str:
    return _reason(exc) if isinstance(exc, ssl.SSLError) else str(exc.strerror or exc)
