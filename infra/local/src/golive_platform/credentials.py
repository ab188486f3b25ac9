"""Who may talk to the local broker, and with which password: generated per install.

One SCRAM principal per service (the services of the topology), one for the operator's tools
(`golive`, the tests' own clients), one for the registry's kafkasql storage, plus the broker's
own two: `broker` (inter-broker, SCRAM) and `controller` (the controller listener, PLAIN).
The passwords live in `<data dir>/credentials.json` (mode 0600), beside the broker's data that
holds their SCRAM hashes: `make clean` forgets both together. Never in git (var/ is ignored).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from golive_contracts.access import services

OPERATOR = "golive"
REGISTRY = "registry"
BROKER = "broker"
CONTROLLER = "controller"
SERVICES = services()
# Who authenticates with SCRAM on the client listener (created in the broker's metadata).
SCRAM_USERS = (BROKER, OPERATOR, REGISTRY, *SERVICES)
# Allowed everything: the broker itself, and the operator who applies topics and ACLs.
SUPER_USERS = (BROKER, CONTROLLER, OPERATOR)
PRINCIPALS = (*SCRAM_USERS, CONTROLLER)
MECHANISM = "SCRAM-SHA-512"


class CredentialsError(RuntimeError):
    """The credentials file cannot be read or names no such principal."""


def _new_password() -> str:
    # URL-safe: no quote, comma or bracket to escape in JAAS or the storage tool's syntax.
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Credentials:
    """The passwords of one platform instance, by principal."""

    path: Path
    passwords: dict[str, str]

    def password(self, principal: str) -> str:
        try:
            return self.passwords[principal]
        except KeyError:
            raise CredentialsError(
                f"{self.path} has no password for {principal!r}: one of {', '.join(self.passwords)}"
            ) from None


def scram_login(user: str, password: str) -> str:
    """The JAAS line a Java Kafka client (the broker itself, the registry) logs in with."""
    module = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return f'{module} required username="{user}" password="{password}";'


def credentials_path(data_dir: Path) -> Path:
    return data_dir / "credentials.json"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One writer at a time of the secrets in `path`'s directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / ".credentials.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_secret(path: Path, text: str) -> None:
    """A file that holds passwords: written atomically, readable by its owner only (a file
    written before, with wider rights, is replaced, not rewritten)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def _write(path: Path, passwords: dict[str, str]) -> None:
    write_secret(path, json.dumps(passwords, indent=2, sort_keys=True))


def _read(path: Path) -> dict[str, str]:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read {path}: {exc}") from exc
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
    ):
        raise CredentialsError(f"{path} is not a JSON object of principal -> password")
    return loaded


def load(data_dir: Path) -> Credentials:
    """This instance's credentials; passwords made for every principal that has none yet."""
    path = credentials_path(data_dir)
    known = _read(path)
    if all(p in known for p in PRINCIPALS):
        return Credentials(path, known)
    with locked(path):
        known = _read(path)  # another process may have written it meanwhile
        missing = [p for p in PRINCIPALS if p not in known]
        if missing:
            known |= {p: _new_password() for p in missing}
            _write(path, known)
    return Credentials(path, known)


def rotate(data_dir: Path, principal: str) -> Credentials:
    """A new password for `principal`, written; `golive credentials rotate` then stores it in
    the broker (golive_platform.kafka.ensure_users)."""
    if principal not in SCRAM_USERS or principal in (BROKER, OPERATOR):
        rotatable = ", ".join(p for p in SCRAM_USERS if p not in (BROKER, OPERATOR))
        raise CredentialsError(f"cannot rotate {principal!r} here: one of {rotatable}")
    path = credentials_path(data_dir)
    with locked(path):
        known = _read(path) | {principal: _new_password()}
        _write(path, known)
    return Credentials(path, known)
