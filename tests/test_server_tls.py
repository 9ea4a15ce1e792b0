"""The sans-IO TLS layer against a real `ssl` client (MemoryBIO pairs and a
socket pair), with certificates made by trustme; and `build_ssl_context`
with the command line's --ssl-* options."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from tests.scripts import load_benchmark
from tinyws.server.config import Config
from tinyws.server.tls import TLSFailure, TLSLayer, TLSState, build_ssl_context

KEY_TYPES = {"ecdsa": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class Client:
    """An `ssl` client over two MemoryBIOs, pumped against a `TLSLayer`."""

    def __init__(self, context: ssl.SSLContext, layer: TLSLayer) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.layer = layer
        self.received = b""  # plaintext the layer gave out

    def pump(self) -> None:
        """Move bytes both ways until neither side has any to move."""
        for _ in range(20):
            to_server = self.outgoing.read()
            if to_server:
                self.received += self.layer.receive(to_server)
            to_client = self.layer.data_to_send()
            if to_client:
                self.incoming.write(to_client)
            if not to_server and not to_client:
                return
        raise AssertionError("TLS exchange did not settle")

    def handshake(self) -> None:
        """Run the client's handshake; raises what the client's ssl raises."""
        for _ in range(20):
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                self.pump()
                continue
            self.pump()  # the client's last flight (TLS 1.3 Finished) reaches the layer
            return
        raise AssertionError("handshake did not finish")

    def send(self, data: bytes) -> bytes:
        self.obj.write(data)
        self.pump()
        received, self.received = self.received, b""
        return received

    def read(self) -> bytes:
        self.pump()
        return self.obj.read(1 << 16)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, tmp: Path, key_type: str = "ecdsa") -> ssl.SSLContext:
    leaf = ca.issue_cert("localhost", key_type=KEY_TYPES[key_type])
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
    return build_ssl_context(str(tmp / "server.pem"))


def client_context(ca: trustme.CA, version: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["http/1.1"])
    if version is not None:
        context.minimum_version = context.maximum_version = VERSIONS[version]
    return context


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_handshake_and_data_both_ways(
    ca: trustme.CA, tmp_path: Path, key_type: str, version: str
) -> None:
    layer = TLSLayer(server_context(ca, tmp_path, key_type))
    client = Client(client_context(ca, version), layer)
    client.handshake()
    assert layer.state is TLSState.OPEN and layer.established
    assert layer.version() == client.obj.version() == f"TLSv{version}"
    cipher = client.obj.cipher()
    assert cipher is not None and layer.cipher() == cipher[0]
    assert client.obj.selected_alpn_protocol() == "http/1.1"
    assert client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    big = bytes(range(256)) * 1024  # several records
    assert client.send(big) == big
    layer.send(b"HTTP/1.1 200 OK\r\n\r\n")
    assert client.read() == b"HTTP/1.1 200 OK\r\n\r\n"
    assert layer.failure is None and layer.reason == ""


def test_bytes_arriving_one_at_a_time(ca: trustme.CA, tmp_path: Path) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    client = Client(client_context(ca), layer)
    with pytest.raises(ssl.SSLWantReadError):
        client.obj.do_handshake()
    hello = client.outgoing.read()
    for i in range(len(hello)):  # a ClientHello trickled byte by byte
        assert layer.receive(hello[i : i + 1]) == b""
    assert layer.state is TLSState.HANDSHAKE and layer.data_to_send()  # ServerHello...


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a TLS ClientHello (plain HTTP)"),
        (b"\x00\x00\x00\x00", "not a TLS ClientHello (first byte 0x00)"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not a TLS ClientHello (first byte 0x53)"),
    ],
)
def test_garbage_instead_of_a_client_hello_fails_at_once(
    ca: trustme.CA, tmp_path: Path, first: bytes, reason: str
) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    assert layer.receive(first) == b""
    assert (layer.state, layer.failure, layer.reason) == (
        TLSState.FAILED,
        TLSFailure.NOT_TLS,
        reason,
    )
    assert layer.data_to_send() == b""  # nothing to answer: close
    assert layer.receive(b"more") == b""  # and nothing is read after the failure


def test_a_malformed_handshake_record_is_a_protocol_failure(ca: trustme.CA, tmp_path: Path) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    layer.receive(b"\x16\x03\x01\x00\x05hello")
    assert (layer.state, layer.failure) == (TLSState.FAILED, TLSFailure.PROTOCOL)
    assert layer.reason and "\n" not in layer.reason and "_ssl.c" not in layer.reason
    assert layer.data_to_send().startswith(b"\x15")  # an alert record goes out


def test_a_client_that_does_not_trust_the_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    client = Client(client_context(trustme.CA()), layer)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.handshake()
    client.pump()  # the client's alert reaches the server
    assert (layer.state, layer.failure) == (TLSState.FAILED, TLSFailure.CERTIFICATE)
    assert layer.reason == "client alert: unknown ca"


def test_a_client_that_leaves_during_the_handshake(ca: trustme.CA, tmp_path: Path) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    client = Client(client_context(ca), layer)
    with pytest.raises(ssl.SSLWantReadError):
        client.obj.do_handshake()
    layer.receive(client.outgoing.read())
    assert layer.receive(b"") == b""
    assert (layer.state, layer.failure) == (TLSState.FAILED, TLSFailure.EOF)
    assert layer.reason == "client closed the connection during the TLS handshake"


def test_a_client_limited_to_tls_1_1_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    context = client_context(ca)
    with warnings.catch_warnings():  # the point is an outdated client
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    layer = TLSLayer(server_context(ca, tmp_path))
    with pytest.raises(ssl.SSLError):
        Client(context, layer).handshake()
    assert (layer.state, layer.failure) == (TLSState.FAILED, TLSFailure.PROTOCOL)
    assert layer.reason == "unsupported protocol"


def test_close_notify_and_plain_eof_end_the_stream(ca: trustme.CA, tmp_path: Path) -> None:
    for polite in (True, False):
        layer = TLSLayer(server_context(ca, tmp_path))
        client = Client(client_context(ca), layer)
        client.handshake()
        client.obj.write(b"last words")
        if polite:
            with pytest.raises(ssl.SSLWantReadError):
                client.obj.unwrap()
            assert layer.receive(client.outgoing.read()) == b"last words"
        else:
            assert layer.receive(client.outgoing.read()) == b"last words"
            assert layer.receive(b"") == b""
        assert (layer.state, layer.failure) == (TLSState.CLOSED, None)


def test_the_server_closes_with_close_notify(ca: trustme.CA, tmp_path: Path) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    client = Client(client_context(ca), layer)
    client.handshake()
    layer.close()
    assert layer.state is TLSState.CLOSED
    client.incoming.write(layer.data_to_send())
    assert client.obj.read(10) == b""  # what SSLObject returns for a close_notify
    with pytest.raises(RuntimeError, match="TLS send in state closed"):
        layer.send(b"x")


def test_the_client_s_close_notify_is_answered(ca: trustme.CA, tmp_path: Path) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    client = Client(client_context(ca), layer)
    client.handshake()
    with pytest.raises(ssl.SSLWantReadError):
        client.obj.unwrap()
    layer.receive(client.outgoing.read())
    assert layer.state is TLSState.CLOSED
    layer.close()
    client.incoming.write(layer.data_to_send())
    client.obj.unwrap()  # completes: the server's close_notify arrived
    layer.close()
    assert layer.data_to_send() == b""  # only once


def test_send_before_the_handshake_is_a_bug(ca: trustme.CA, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="TLS send in state handshake"):
        TLSLayer(server_context(ca, tmp_path)).send(b"x")


# --- client certificates (--ssl-ca-certs) ----------------------------------------


@pytest.fixture
def mtls(ca: trustme.CA, tmp_path: Path) -> tuple[ssl.SSLContext, trustme.CA]:
    """A server context asking for client certificates from a CA of its own."""
    clients = trustme.CA()
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    clients.cert_pem.write_to_path(str(tmp_path / "clients.pem"))
    context = build_ssl_context(
        str(tmp_path / "server.pem"), ca_certs=str(tmp_path / "clients.pem")
    )
    assert context.verify_mode is ssl.CERT_OPTIONAL
    return context, clients


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_client_certificate_from_the_ca(
    ca: trustme.CA, mtls: tuple[ssl.SSLContext, trustme.CA], version: str
) -> None:
    context, clients = mtls
    client_ctx = client_context(ca, version)
    clients.issue_cert("alice@example.com").configure_cert(client_ctx)
    layer = TLSLayer(context)
    client = Client(client_ctx, layer)
    client.handshake()
    assert client.send(b"hi") == b"hi"
    assert layer.state is TLSState.OPEN and layer.peer_certificate()


def test_a_client_without_a_certificate_is_served(
    ca: trustme.CA, mtls: tuple[ssl.SSLContext, trustme.CA]
) -> None:
    layer = TLSLayer(mtls[0])
    client = Client(client_context(ca), layer)
    client.handshake()
    assert client.send(b"hi") == b"hi"
    assert layer.peer_certificate() is None


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_client_certificate_from_another_ca(
    ca: trustme.CA, mtls: tuple[ssl.SSLContext, trustme.CA], version: str
) -> None:
    client_ctx = client_context(ca, version)
    trustme.CA().issue_cert("mallory@example.com").configure_cert(client_ctx)
    layer = TLSLayer(mtls[0])
    client = Client(client_ctx, layer)
    try:
        client.handshake()
        client.send(b"hi")
    except ssl.SSLError:
        pass  # TLS 1.2: the client hears the alert during its handshake
    assert (layer.state, layer.failure) == (TLSState.FAILED, TLSFailure.CERTIFICATE)
    assert layer.reason == "client certificate: unable to get local issuer certificate"


# --- over a real socket pair -------------------------------------------------------


def test_a_blocking_ssl_client_over_a_socket_pair(ca: trustme.CA, tmp_path: Path) -> None:
    layer = TLSLayer(server_context(ca, tmp_path))
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    got: list[bytes] = []

    def client() -> None:
        with client_context(ca).wrap_socket(theirs, server_hostname="localhost") as tls:
            tls.sendall(b"ping")
            got.append(tls.recv(100))

    thread = threading.Thread(target=client)
    thread.start()
    plaintext = b""
    while plaintext != b"ping":
        plaintext += layer.receive(ours.recv(65536))
        ours.sendall(layer.data_to_send())
        assert layer.state in (TLSState.HANDSHAKE, TLSState.OPEN), layer.reason
    layer.send(b"pong")
    ours.sendall(layer.data_to_send())
    thread.join(10)
    ours.close()
    assert got == [b"pong"]


# --- build_ssl_context and the command line -------------------------------------------


def test_the_context_settings(ca: trustme.CA, tmp_path: Path) -> None:
    context = server_context(ca, tmp_path)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_NONE  # no --ssl-ca-certs: no client certificates


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    leaf = ca.issue_cert("localhost")
    names = ("both", "cert", "key", "locked", "junk", "other")
    paths = {name: tmp_path / f"{name}.pem" for name in names}
    ca.issue_cert("localhost").private_key_pem.write_to_path(str(paths["other"]))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(paths["both"]))
    paths["cert"].write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    paths["locked"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    paths["junk"].write_text("not a certificate\n")
    return paths


def test_a_separate_key_and_an_encrypted_one(files: dict[str, Path]) -> None:
    build_ssl_context(str(files["cert"]), str(files["key"]))
    build_ssl_context(str(files["cert"]), str(files["locked"]), password="s3cret")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ssl-certfile", "{tmp}/nope.pem"],
            "cannot read {tmp}/nope.pem: No such file or directory",
        ),
        (["--ssl-certfile", "{junk}"], "ssl certfile {junk}: no PEM certificate in it"),
        (
            ["--ssl-certfile", "{cert}"],
            "ssl certfile {cert}: no PEM private key in it (give a keyfile)",
        ),
        (
            ["--ssl-certfile", "{cert}", "--ssl-keyfile", "{junk}"],
            "ssl keyfile {junk}: no PEM private key in it",
        ),
        (
            ["--ssl-certfile", "{cert}", "--ssl-keyfile", "{other}"],
            "ssl keyfile {other}: does not match the certificate in {cert}",
        ),
        (
            ["--ssl-certfile", "{cert}", "--ssl-keyfile", "{locked}"],
            "ssl keyfile {locked}: encrypted key, no password given",
        ),
        (
            [
                "--ssl-certfile",
                "{cert}",
                "--ssl-keyfile",
                "{locked}",
                "--ssl-keyfile-password",
                "no",
            ],
            "ssl keyfile {locked}: wrong password",
        ),
        (
            ["--ssl-certfile", "{both}", "--ssl-ca-certs", "{tmp}/none.pem"],
            "ssl ca_certs {tmp}/none.pem: No such file or directory",
        ),
        (
            ["--ssl-keyfile", "{key}"],
            "--ssl-keyfile, --ssl-keyfile-password and --ssl-ca-certs need --ssl-certfile",
        ),
    ],
)
def test_bad_tls_options_exit_2_in_one_line(
    files: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    names = {name: str(path) for name, path in files.items()} | {"tmp": str(tmp_path)}
    argv = [arg.format(**names) for arg in args]
    done = subprocess.run(
        [sys.executable, "-m", "tinyws", "serve", "tests.apps.origin:app", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (2, f"tinyws serve: {message.format(**names)}\n")


def test_the_config_holds_the_context(files: dict[str, Path]) -> None:
    context = build_ssl_context(str(files["both"]))
    config = Config(ssl=context)
    assert config.ssl is context and config.limits().source.secure
    assert not Config().limits().source.secure


def test_the_tls_floor_benchmark_runs(tmp_path: Path) -> None:
    floor = load_benchmark("tls_floor")
    out = tmp_path / "floor.json"
    argv = ["-n", "3", "--warmup", "1", "--key", "ecdsa", "--server", "ssl", "layer"]
    assert floor.main([*argv, "--cpus", "0", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(row["server"], row["tls"], row["handshakes"]) for row in rows] == [
        ("ssl", "TLSv1.3", 3),
        ("layer", "TLSv1.3", 3),
    ]
    assert all(row["server_cpu_us_per_handshake"] > 0 for row in rows)
