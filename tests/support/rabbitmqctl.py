"""The shared broker's own view and users of its own, for integration tests.

``rabbitmqctl`` talks to the node that serves 127.0.0.1:5672. Tests use it
to look (``list_connections``, ``version``) and to manage users that only
they use (:class:`BrokerUser`: created with a unique name, deleted at the
end); never to stop, reset or reconfigure the broker.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import uuid
from typing import Any
from urllib.parse import quote

from amqp_client import uri

__all__ = ["BrokerUser", "list_connections", "rabbitmqctl"]


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    """Run ``rabbitmqctl -q <args>``; its output.

    Raises:
        AssertionError: it is not installed, or failed (with what it said).
    """
    command = shutil.which("rabbitmqctl")
    assert command is not None, "rabbitmqctl is not installed"
    done = subprocess.run(
        [command, "-q", *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"rabbitmqctl {args[0]}: {done.stderr.strip()}"
    return done.stdout


def list_connections(*items: str) -> list[dict[str, Any]]:
    """``rabbitmqctl list_connections <items>``, one dict per connection."""
    rows: list[dict[str, Any]] = json.loads(
        rabbitmqctl("list_connections", *items, "--formatter", "json")
    )
    return rows


@dataclasses.dataclass
class BrokerUser:
    """A user of the broker that only one test uses (see :meth:`create`)."""

    name: str
    password: str
    base_url: str

    @classmethod
    def create(cls, base_url: str) -> BrokerUser:
        """A new user with a unique name, allowed everything on the vhost
        of ``base_url``; :meth:`delete` it at the end."""
        user = cls(
            f"amqp-client-test-{uuid.uuid4().hex[:12]}",
            f"pw-{uuid.uuid4().hex}",
            base_url,
        )
        rabbitmqctl("add_user", user.name, user.password)
        try:
            vhost = uri.parse_url(base_url).vhost
            rabbitmqctl("set_permissions", "-p", vhost, user.name, ".*", ".*", ".*")
        except BaseException:
            user.delete()
            raise
        return user

    def delete(self) -> None:
        rabbitmqctl("delete_user", self.name)

    def url(self, password: str | None = None) -> str:
        """``base_url``, logging in as this user (with ``password``, or
        the current one)."""
        params = uri.parse_url(self.base_url)
        host = f"[{params.host}]" if ":" in params.host else params.host
        secret = self.password if password is None else password
        return (
            f"amqp://{quote(self.name, safe='')}:{quote(secret, safe='')}"
            f"@{host}:{params.port}/{quote(params.vhost, safe='')}"
        )

    def change_password(self, password: str) -> None:
        rabbitmqctl("change_password", self.name, password)
        self.password = password

    def close_connections(self) -> None:
        """The broker closes every connection of this user (320
        connection-forced, which a recovering client recovers from)."""
        rabbitmqctl("close_all_user_connections", self.name, "amqp-client test closing")
