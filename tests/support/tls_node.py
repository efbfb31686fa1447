"""A throw-away RabbitMQ node with an AMQPS listener and SASL EXTERNAL.

:class:`TlsBrokerNode` is a :class:`~tests.support.broker.BrokerNode` (own
node name, ports, HOME, data dir; the shared broker is never touched) that
also:

* has a test PKI made with the ``openssl`` command in its temp dir
  (``<base_dir>/tls``, removed with the node): a CA, a server certificate
  for ``localhost`` / ``127.0.0.1`` (subjectAltName) and a client
  certificate whose common name is :data:`TLS_USER`, all signed by that CA
  (EC P-256 keys: quick to make);
* listens for AMQPS on its own port (``listeners.ssl``), with
  ``verify_peer`` and ``fail_if_no_peer_cert = false``: a client
  certificate is checked against the CA when one is sent, but not required;
* enables ``rabbitmq_auth_mechanism_ssl`` and offers PLAIN, AMQPLAIN and
  EXTERNAL, EXTERNAL taking the user name from the certificate's common
  name (``ssl_cert_login_from = common_name``). RabbitMQ offers EXTERNAL
  only on a TLS connection that presented a client certificate;
* has the user :data:`TLS_USER` (no password: it can log in only with its
  certificate) and guest/guest, both with all permissions on ``/``, from a
  definitions file loaded at boot.

Use::

    with TlsBrokerNode() as node:
        ctx = node.client_context(client_cert=True)
        amqp_client.blocking.connect(node.amqps_url, ssl=ctx,
                                     auth_mechanism="EXTERNAL")

In pytest, use the ``tls_broker_node`` fixture of tests/conftest.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
import ssl
import subprocess
import time
from pathlib import Path

from tests.support.broker import (
    DEFAULT_START_TIMEOUT,
    BrokerError,
    BrokerNode,
    free_port,
)

__all__ = ["TLS_USER", "TlsBrokerNode", "TlsFiles", "make_tls_files"]

#: The user the client certificate names (its CN); exists on the node.
TLS_USER = "amqp-tls-user"
#: The plugin that implements SASL EXTERNAL in RabbitMQ.
EXTERNAL_PLUGIN = "rabbitmq_auth_mechanism_ssl"
OPENSSL_TIMEOUT = 30.0
_KEY_ARGS = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files :func:`make_tls_files` writes."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(directory: Path, *args: str) -> None:
    try:
        subprocess.run(
            ["openssl", *args],
            cwd=directory,
            check=True,
            capture_output=True,
            text=True,
            timeout=OPENSSL_TIMEOUT,
        )
    except FileNotFoundError as exc:
        raise BrokerError("the openssl command is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise BrokerError(f"openssl {' '.join(args)} failed:\n{exc.stderr}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"openssl {args[0]} took over {OPENSSL_TIMEOUT:g} s") from exc


def make_tls_files(directory: Path, *, client_cn: str = TLS_USER) -> TlsFiles:
    """Write a CA, a server and a client certificate with keys into
    ``directory`` (created), using the ``openssl`` command.

    The server certificate is for ``localhost`` and ``127.0.0.1``
    (subjectAltName, serverAuth); the client one has CN ``client_cn``
    (clientAuth). Both are signed by the CA and valid for two days; the
    extensions are those Python's strict X.509 checks want.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    files = TlsFiles(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    _openssl(
        directory,
        "req", "-x509", *_KEY_ARGS, "-days", "2",
        "-keyout", str(files.ca_key), "-out", str(files.ca_cert),
        "-subj", "/O=amqp-client tests/CN=amqp-client test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    leaves = (
        (files.server_cert, files.server_key, "/CN=localhost", "server"),
        (files.client_cert, files.client_key, f"/CN={client_cn}", "client"),
    )
    for cert, key, subject, role in leaves:
        extensions = directory / f"{role}.ext"
        extensions.write_text(
            "basicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage = {role}Auth\n"
            "subjectKeyIdentifier = hash\n"
            "authorityKeyIdentifier = keyid,issuer\n"
            + (
                "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
                if role == "server"
                else ""
            )
        )
        request = directory / f"{role}.csr"
        _openssl(
            directory,
            "req", "-new", *_KEY_ARGS, "-keyout", str(key), "-out", str(request),
            "-subj", subject,
        )  # fmt: skip
        _openssl(
            directory,
            "x509", "-req", "-in", str(request), "-days", "2",
            "-CA", str(files.ca_cert), "-CAkey", str(files.ca_key),
            "-set_serial", str(time.time_ns()),
            "-extfile", str(extensions), "-out", str(cert),
        )  # fmt: skip
    for key in (files.ca_key, files.server_key, files.client_key):
        key.chmod(0o600)
    return files


def _password_hash(password: str) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256`` hash, base64: a 4-byte
    salt, then SHA-256 of salt + password."""
    salt = secrets.token_bytes(4)
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode("ascii")


class TlsBrokerNode(BrokerNode):
    """A :class:`BrokerNode` with AMQPS, client certificates and EXTERNAL
    (see the module docstring). The plain AMQP listener stays, on
    :attr:`port`; AMQPS is on :attr:`tls_port`.

    ``extra_config`` lines are added after the TLS ones; ``plugins`` next to
    ``rabbitmq_auth_mechanism_ssl``.
    """

    def __init__(
        self,
        *,
        user: str = TLS_USER,
        extra_config: tuple[str, ...] = (),
        plugins: tuple[str, ...] = (),
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        super().__init__(
            plugins=(EXTERNAL_PLUGIN, *plugins),
            start_timeout=start_timeout,
            name_prefix="amqptls",
        )
        self.user = user
        self.tls_port = free_port()
        self._user_config = extra_config
        try:
            self.tls_files = make_tls_files(self.base_dir / "tls", client_cn=user)
            self._write_definitions()
            self._configure()
        except BaseException:
            self.close()
            raise

    # -- what tests use ------------------------------------------------------

    @property
    def amqps_url(self) -> str:
        """The AMQPS URL (guest/guest, host ``localhost`` as in the server
        certificate, vhost ``/``). EXTERNAL ignores the credentials."""
        return f"amqps://guest:guest@localhost:{self.tls_port}/%2F"

    @property
    def tls_address(self) -> tuple[str, int]:
        return (self.host, self.tls_port)

    @property
    def ca_path(self) -> Path:
        return self.tls_files.ca_cert

    @property
    def client_cert_path(self) -> Path:
        return self.tls_files.client_cert

    @property
    def client_key_path(self) -> Path:
        return self.tls_files.client_key

    def client_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` trusting this node's CA (hostname checks
        on), holding the client certificate and key if ``client_cert``."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        if client_cert:
            context.load_cert_chain(self.client_cert_path, self.client_key_path)
        return context

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" tls_port={self.tls_port}>"

    # -- configuration -------------------------------------------------------

    def _write_definitions(self) -> None:
        """The certificate's user (passwordless) and guest/guest (RabbitMQ
        creates no default user when definitions are loaded at boot), all
        permissions on ``/``; loaded at boot, so no ``rabbitmqctl`` round
        trips."""
        users = {"guest": _password_hash("guest"), self.user: ""}
        definitions = {
            "vhosts": [{"name": "/"}],
            "users": [
                {
                    "name": name,
                    "password_hash": password_hash,
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": ["administrator"] if name == "guest" else [],
                }
                for name, password_hash in users.items()
            ],
            "permissions": [
                {
                    "user": name,
                    "vhost": "/",
                    "configure": ".*",
                    "write": ".*",
                    "read": ".*",
                }
                for name in users
            ],
        }
        path = self.base_dir / "definitions.json"
        path.write_text(json.dumps(definitions, indent=2) + "\n")

    def _configure(self) -> None:
        files = self.tls_files
        self.extra_config = (
            f"listeners.ssl.default = {self.host}:{self.tls_port}",
            f"ssl_options.cacertfile = {files.ca_cert}",
            f"ssl_options.certfile = {files.server_cert}",
            f"ssl_options.keyfile = {files.server_key}",
            "ssl_options.verify = verify_peer",
            "ssl_options.fail_if_no_peer_cert = false",
            "auth_mechanisms.1 = PLAIN",
            "auth_mechanisms.2 = AMQPLAIN",
            "auth_mechanisms.3 = EXTERNAL",
            "ssl_cert_login_from = common_name",
            f"load_definitions = {self.base_dir / 'definitions.json'}",
            *self._user_config,
        )

    def _pick_new_ports(self) -> None:
        super()._pick_new_ports()
        self.tls_port = free_port()
        self._configure()
