"""Per-install credentials (golive_platform.credentials) and the broker's SASL settings."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from golive_platform import credentials
from golive_platform.config import PlatformConfig
from golive_platform.kafka import secret_properties, server_properties

pytestmark = pytest.mark.unit


def test_made_once_per_install_for_every_principal_owner_only(tmp_path: Path) -> None:
    first = credentials.load(tmp_path)
    assert set(first.passwords) == set(credentials.PRINCIPALS)
    assert {"order", "payment", "audit"} <= set(credentials.SERVICES)
    assert len(set(first.passwords.values())) == len(first.passwords)  # none shared
    mode = stat.S_IMODE(credentials.credentials_path(tmp_path).stat().st_mode)
    assert mode == 0o600
    assert credentials.load(tmp_path) == first  # read back, not made again


def test_processes_starting_together_agree_on_one_set(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(lambda _: credentials.load(tmp_path).passwords, range(16)))
    assert all(found == loaded[0] for found in loaded)


def test_a_principal_added_later_gets_a_password_and_the_others_keep_theirs(
    tmp_path: Path,
) -> None:
    before = credentials.load(tmp_path).passwords
    path = credentials.credentials_path(tmp_path)
    path.write_text(json.dumps({k: v for k, v in before.items() if k != "audit"}))
    after = credentials.load(tmp_path).passwords
    assert after["audit"] != before["audit"]
    assert {k: v for k, v in after.items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"
    }


def test_rotation_changes_one_password(tmp_path: Path) -> None:
    before = credentials.load(tmp_path).passwords
    after = credentials.rotate(tmp_path, "payment").passwords
    assert after["payment"] != before["payment"]
    assert {k: v for k, v in after.items() if k != "payment"} == {
        k: v for k, v in before.items() if k != "payment"
    }
    assert credentials.load(tmp_path).passwords == after
    with pytest.raises(credentials.CredentialsError, match="cannot rotate 'broker'"):
        credentials.rotate(tmp_path, "broker")


def test_a_damaged_file_is_named(tmp_path: Path) -> None:
    credentials.credentials_path(tmp_path).write_text("[1, 2]")
    with pytest.raises(credentials.CredentialsError, match=r"credentials.json is not a JSON"):
        credentials.load(tmp_path)
    with pytest.raises(credentials.CredentialsError, match="no password for 'nobody'"):
        credentials.Credentials(tmp_path, {}).password("nobody")


def test_the_broker_has_no_unauthenticated_listener(tmp_path: Path) -> None:
    config = PlatformConfig(data_dir=tmp_path)
    props = server_properties(config, tmp_path)
    protocols = [pair.split(":")[1] for pair in props["listener.security.protocol.map"].split(",")]
    assert protocols == ["SASL_PLAINTEXT", "SASL_PLAINTEXT"]
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert set(props["super.users"].split(";")) == {"User:broker", "User:controller", "User:golive"}
    secrets = secret_properties(credentials.load(tmp_path))
    assert not any("password" in v for v in props.values())  # passwords only in these
    assert all("password=" in v for v in secrets.values())


def test_the_operator_and_each_service_log_in_as_themselves(tmp_path: Path) -> None:
    config = PlatformConfig(data_dir=tmp_path)
    passwords = credentials.load(tmp_path)
    operator, payment = config.connection(), config.connection("payment")
    assert (operator.principal, payment.principal) == ("golive", "payment")
    assert payment.kafka_sasl_password is not None
    assert payment.kafka_sasl_password.get_secret_value() == passwords.password("payment")
    assert payment.kafka_security_protocol == "SASL_PLAINTEXT"
