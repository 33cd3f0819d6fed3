"""Kafka security settings (TLS and SASL) for every client liqstress uses: aiokafka (collectors,
topic admin, supervisor, rebuild), Faust (the worker) and confluent-kafka.

One ``KafkaSecurity`` comes from ``LIQSTRESS_KAFKA_*`` environment variables, overridden by the
``--kafka-*`` flags that ``add_arguments`` adds; ``from_args`` validates it (``ConfigError``,
one line, before anything connects) and the ``*_kwargs``/``*_config``/``*_credentials`` methods
turn it into each client's settings.

Secrets (the SASL password, the client key's password) come from an environment variable or a
file, never from a flag (flags show in ``ps``). They are held in ``Secret``, whose ``repr`` and
``str`` are ``***``: printing, logging or formatting the settings never shows them. The dicts
the methods return do hold them in clear, as the clients need them: don't log those dicts.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liqstress.config import ConfigError, parse_bool

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

ENV_PREFIX = "LIQSTRESS_KAFKA_"


class Secret:
    """A string that never shows itself: ``repr``/``str``/``format`` give ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # pickling would write the secret out
        raise TypeError("a Secret cannot be pickled")


def _read_secret_file(path: str, what: str) -> Secret:
    """The file's content, one trailing newline removed (``echo pw > file`` works)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"cannot read {what} file {path}: {reason}") from None
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    if not text:
        raise ConfigError(f"{what} file {path} is empty")
    return Secret(text)


def _check_readable(path: str, what: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if os.path.isdir(path):
        raise ConfigError(f"{what} {path} is a directory, not a file")


@dataclass(frozen=True, repr=False)
class KafkaSecurity:
    """How to reach a secured Kafka. ``PLAINTEXT`` (the default) changes nothing."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: Secret | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    key_password: Secret | None = None
    check_hostname: bool = True

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        """From ``LIQSTRESS_KAFKA_*`` variables only (validated)."""
        return cls.from_args(None, env)

    @classmethod
    def from_args(cls, args: argparse.Namespace | None,
                  env: Mapping[str, str] | None = None) -> KafkaSecurity:
        """Flags (``add_arguments``) over environment variables over defaults; validated.

        ``env`` defaults to ``os.environ``. ``args`` may be None or lack the flags."""
        env = os.environ if env is None else env

        def flag(name: str) -> Any:
            return getattr(args, name, None) if args is not None else None

        def var(name: str) -> str | None:
            val = env.get(ENV_PREFIX + name)
            return val if val not in (None, "") else None

        def pick(dest: str, name: str) -> str | None:
            val = flag(dest)
            return val if val not in (None, "") else var(name)

        def secret(dest_file: str, name: str, what: str) -> Secret | None:
            path = flag(dest_file)
            if path:  # the flag wins over both variables
                return _read_secret_file(path, what)
            value, path = var(name), var(name + "_FILE")
            if value is not None and path is not None:
                raise ConfigError(f"set {ENV_PREFIX}{name} or {ENV_PREFIX}{name}_FILE, not both")
            if path is not None:
                return _read_secret_file(path, what)
            return Secret(value) if value is not None else None

        check = flag("kafka_ssl_check_hostname")
        if check is None:
            text = var("SSL_CHECK_HOSTNAME")
            try:
                check = True if text is None else parse_bool(text)
            except ConfigError:
                raise ConfigError(f"{ENV_PREFIX}SSL_CHECK_HOSTNAME must be true or false, "
                                  f"got {text!r}") from None

        protocol = pick("kafka_security_protocol", "SECURITY_PROTOCOL")
        mechanism = pick("kafka_sasl_mechanism", "SASL_MECHANISM")
        return cls.build(
            protocol=protocol,
            sasl_mechanism=mechanism,
            username=pick("kafka_sasl_username", "SASL_USERNAME"),
            password=secret("kafka_sasl_password_file", "SASL_PASSWORD", "SASL password"),
            cafile=pick("kafka_ssl_cafile", "SSL_CAFILE"),
            certfile=pick("kafka_ssl_certfile", "SSL_CERTFILE"),
            keyfile=pick("kafka_ssl_keyfile", "SSL_KEYFILE"),
            key_password=secret("kafka_ssl_key_password_file", "SSL_KEY_PASSWORD",
                                "TLS key password"),
            check_hostname=bool(check),
        )

    @classmethod
    def build(cls, *, protocol: str | None = None, sasl_mechanism: str | None = None,
              username: str | None = None, password: str | Secret | None = None,
              cafile: str | None = None, certfile: str | None = None,
              keyfile: str | None = None, key_password: str | Secret | None = None,
              check_hostname: bool = True) -> KafkaSecurity:
        """Normalize, infer the protocol when not given, validate.

        Without a protocol: any SASL setting means SASL, any TLS file means TLS
        (``SASL_SSL`` when both, ``PLAINTEXT`` when neither)."""
        sasl_given = any(v is not None for v in (sasl_mechanism, username, password))
        tls_given = any(v is not None for v in (cafile, certfile, keyfile, key_password))
        if protocol is None:
            protocol = ("SASL_" if sasl_given else "") + ("SSL" if tls_given else "PLAINTEXT")
        else:
            protocol = protocol.strip().upper().replace("-", "_")
        if protocol not in PROTOCOLS:
            raise ConfigError(f"Kafka security protocol must be one of {', '.join(PROTOCOLS)}, "
                              f"got {protocol!r}")
        if sasl_mechanism is not None:
            sasl_mechanism = sasl_mechanism.strip().upper().replace("_", "-")
        if protocol.startswith("SASL_") and sasl_mechanism is None:
            sasl_mechanism = "PLAIN"
        sec = cls(
            protocol=protocol,
            sasl_mechanism=sasl_mechanism,
            username=username,
            password=Secret(password) if isinstance(password, str) else password,
            cafile=cafile,
            certfile=certfile,
            keyfile=keyfile,
            key_password=(Secret(key_password) if isinstance(key_password, str)
                          else key_password),
            check_hostname=check_hostname,
        )
        sec.validate()
        return sec

    def validate(self) -> None:
        """Raise ``ConfigError`` (one line, no secret) for settings that cannot work."""
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"Kafka security protocol must be one of {', '.join(PROTOCOLS)}, "
                              f"got {self.protocol!r}")
        if self.sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ConfigError(f"Kafka SASL mechanism must be one of {', '.join(MECHANISMS)}, "
                                  f"got {self.sasl_mechanism!r}")
            if not self.username:
                raise ConfigError(f"Kafka SASL ({self.sasl_mechanism}) needs a username "
                                  f"(--kafka-sasl-username or {ENV_PREFIX}SASL_USERNAME)")
            if self.password is None or not self.password.get():
                raise ConfigError(f"Kafka SASL ({self.sasl_mechanism}) needs a password "
                                  f"({ENV_PREFIX}SASL_PASSWORD, {ENV_PREFIX}SASL_PASSWORD_FILE "
                                  "or --kafka-sasl-password-file)")
        else:
            given = [name for name, val in (("SASL mechanism", self.sasl_mechanism),
                                            ("SASL username", self.username),
                                            ("SASL password", self.password)) if val is not None]
            if given:
                raise ConfigError(f"Kafka {given[0]} is set but the security protocol is "
                                  f"{self.protocol} (use SASL_PLAINTEXT or SASL_SSL)")
        if self.tls:
            if self.keyfile is not None and self.certfile is None:
                raise ConfigError("a Kafka TLS client key needs its certificate "
                                  f"(--kafka-ssl-certfile or {ENV_PREFIX}SSL_CERTFILE)")
            if self.key_password is not None and self.certfile is None:
                raise ConfigError("a Kafka TLS key password is set but no client certificate")
            for path, what in ((self.cafile, "Kafka CA file"),
                               (self.certfile, "Kafka client certificate"),
                               (self.keyfile, "Kafka client key")):
                if path is not None:
                    _check_readable(path, what)
            self.ssl_context()  # a bad PEM, a key not matching or a wrong key password
        else:
            given = [name for name, val in (("CA file", self.cafile),
                                            ("client certificate", self.certfile),
                                            ("client key", self.keyfile),
                                            ("key password", self.key_password))
                     if val is not None]
            if given:
                raise ConfigError(f"Kafka TLS {given[0]} is set but the security protocol is "
                                  f"{self.protocol} (use SSL or SASL_SSL)")

    # ----------------------------------------------------------------- properties

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def enabled(self) -> bool:
        return self.protocol != "PLAINTEXT"

    # ----------------------------------------------------------------- client settings

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context (verifies the broker; presents the client certificate if set);
        None without TLS. Raises ``ConfigError`` when a file cannot be loaded."""
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"cannot load Kafka CA file {self.cafile}: {_ssl_reason(exc)}") \
                from None
        if not self.check_hostname:
            ctx.check_hostname = False  # the certificate chain is still verified
        if self.certfile is not None:
            key_password = self.key_password

            def password() -> str:
                # Without this callback OpenSSL would prompt on the terminal for an
                # encrypted key, and block a service.
                if key_password is None:
                    raise ConfigError(
                        f"Kafka client key {self.keyfile or self.certfile} is encrypted: set "
                        f"{ENV_PREFIX}SSL_KEY_PASSWORD or {ENV_PREFIX}SSL_KEY_PASSWORD_FILE")
                return key_password.get()

            try:
                ctx.load_cert_chain(self.certfile, self.keyfile, password=password)
            except ConfigError:
                raise
            except (ssl.SSLError, OSError, ValueError) as exc:
                key = f" / key {self.keyfile}" if self.keyfile else ""
                raise ConfigError(f"cannot load Kafka client certificate {self.certfile}{key}: "
                                  f"{_ssl_reason(exc)}") from None
        return ctx

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer/AIOKafkaConsumer/AIOKafkaAdminClient."""
        kw: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            assert self.password is not None
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                      sasl_plain_password=self.password.get())
        if self.tls:
            kw["ssl_context"] = self.ssl_context()
        return kw

    def faust_credentials(self) -> Any:
        """For ``faust.App(broker_credentials=...)``: SASLCredentials (with the TLS context
        under SASL_SSL), SSLCredentials, or None for PLAINTEXT."""
        if not self.enabled:
            return None
        import faust  # lazily: the collectors don't need it

        if self.sasl:
            assert self.password is not None
            return faust.SASLCredentials(username=self.username, password=self.password.get(),
                                         mechanism=self.sasl_mechanism,
                                         ssl_context=self.ssl_context())
        return faust.SSLCredentials(self.ssl_context())

    def confluent_config(self) -> dict[str, str]:
        """librdkafka properties to merge into a confluent-kafka client's config."""
        conf = {"security.protocol": self.protocol.lower()}
        if self.sasl:
            assert self.password is not None and self.username is not None
            assert self.sasl_mechanism is not None
            conf.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.username,
                         "sasl.password": self.password.get()})
        if self.tls:
            if self.cafile is not None:
                conf["ssl.ca.location"] = self.cafile
            if self.certfile is not None:
                conf["ssl.certificate.location"] = self.certfile
                # librdkafka needs the key separately; a combined PEM serves as both
                conf["ssl.key.location"] = self.keyfile or self.certfile
            if self.key_password is not None:
                conf["ssl.key.password"] = self.key_password.get()
            conf["ssl.endpoint.identification.algorithm"] = ("https" if self.check_hostname
                                                             else "none")
        return conf

    # ----------------------------------------------------------------- display

    def __repr__(self) -> str:
        fields = [f"protocol={self.protocol!r}"]
        if self.sasl:
            fields += [f"sasl_mechanism={self.sasl_mechanism!r}", f"username={self.username!r}",
                       f"password={'***' if self.password else None}"]
        if self.tls:
            fields += [f"cafile={self.cafile!r}", f"certfile={self.certfile!r}",
                       f"keyfile={self.keyfile!r}",
                       f"key_password={'***' if self.key_password else None}",
                       f"check_hostname={self.check_hostname!r}"]
        return f"KafkaSecurity({', '.join(fields)})"

    def __str__(self) -> str:
        """One line for logs: ``SASL_SSL (SCRAM-SHA-512 as alice; CA /x; client cert /y)``."""
        parts = []
        if self.sasl:
            parts.append(f"{self.sasl_mechanism} as {self.username}")
        if self.tls:
            parts.append(f"CA {self.cafile}" if self.cafile else "system CAs")
            if self.certfile:
                parts.append(f"client cert {self.certfile}")
            if not self.check_hostname:
                parts.append("hostname not checked")
        return self.protocol + (f" ({'; '.join(parts)})" if parts else "")


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or str(exc.args[-1] if exc.args else exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    """Add the ``--kafka-*`` security flags (a parser or an argument group). Every flag
    defaults to None, i.e. "use the environment variable"; secrets only as files."""
    group = parser.add_argument_group(
        "Kafka security",
        "TLS and SASL for the Kafka connection. Each flag has a LIQSTRESS_KAFKA_* variable; "
        "the flag wins. Passwords come from LIQSTRESS_KAFKA_SASL_PASSWORD / "
        "LIQSTRESS_KAFKA_SSL_KEY_PASSWORD or from a file, never from a flag.") \
        if hasattr(parser, "add_argument_group") else parser
    group.add_argument("--kafka-security-protocol", metavar="PROTO", type=str.upper,
                       choices=PROTOCOLS,
                       help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL "
                            "(env LIQSTRESS_KAFKA_SECURITY_PROTOCOL; default: inferred from the "
                            "other settings, PLAINTEXT when none)")
    group.add_argument("--kafka-sasl-mechanism", metavar="MECH", type=str.upper,
                       choices=MECHANISMS,
                       help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 "
                            "(env LIQSTRESS_KAFKA_SASL_MECHANISM; default PLAIN)")
    group.add_argument("--kafka-sasl-username", metavar="USER",
                       help="SASL username (env LIQSTRESS_KAFKA_SASL_USERNAME)")
    group.add_argument("--kafka-sasl-password-file", metavar="FILE",
                       help="file holding the SASL password (env "
                            "LIQSTRESS_KAFKA_SASL_PASSWORD_FILE, or the password itself in "
                            "LIQSTRESS_KAFKA_SASL_PASSWORD)")
    group.add_argument("--kafka-ssl-cafile", metavar="FILE",
                       help="PEM CA bundle that signed the broker's certificate "
                            "(env LIQSTRESS_KAFKA_SSL_CAFILE; default: the system CAs)")
    group.add_argument("--kafka-ssl-certfile", metavar="FILE",
                       help="PEM client certificate, for brokers requiring one "
                            "(env LIQSTRESS_KAFKA_SSL_CERTFILE)")
    group.add_argument("--kafka-ssl-keyfile", metavar="FILE",
                       help="PEM private key of the client certificate, if not in the "
                            "certificate file (env LIQSTRESS_KAFKA_SSL_KEYFILE)")
    group.add_argument("--kafka-ssl-key-password-file", metavar="FILE",
                       help="file holding the client key's password (env "
                            "LIQSTRESS_KAFKA_SSL_KEY_PASSWORD_FILE or "
                            "LIQSTRESS_KAFKA_SSL_KEY_PASSWORD)")
    group.add_argument("--kafka-ssl-check-hostname", action=argparse.BooleanOptionalAction,
                       default=None,
                       help="check that the broker's certificate names the host connected to "
                            "(env LIQSTRESS_KAFKA_SSL_CHECK_HOSTNAME; default on)")


__all__ = ["MECHANISMS", "PROTOCOLS", "KafkaSecurity", "Secret", "add_arguments"]


# ---- the settings of this process ------------------------------------------------------------
# Like the logging configuration, the Kafka security settings belong to the process: the CLI
# sets them once, before anything connects, and every client liqstress creates for an external
# broker (collectors' sink, topic admin, the worker's Faust app and its side readers) uses them.
# Callers that never set them (tests, embedding programs) get PLAINTEXT.
_current: KafkaSecurity | None = None
_kwargs: dict[str, Any] | None = None


def use(security: KafkaSecurity) -> None:
    """Adopt ``security`` for every Kafka client created from now on (validated here, so a
    bad setting fails before anything connects)."""
    global _current, _kwargs
    security.validate()
    _current, _kwargs = security, security.aiokafka_kwargs()


def current() -> KafkaSecurity:
    global _current
    if _current is None:
        _current = KafkaSecurity.build()
    return _current


def client_kwargs() -> dict[str, Any]:
    """aiokafka keyword arguments for the current settings (one TLS context per process)."""
    global _kwargs
    if _kwargs is None:
        _kwargs = current().aiokafka_kwargs()
    return dict(_kwargs)
