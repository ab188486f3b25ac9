"""One place builds every Kafka and registry client (golive_eventing.clients)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from golive_eventing.clients import Connection, kafka_config, registry_config
from pydantic import ValidationError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT / "services" / "eventing" / "src" / "golive_eventing" / "clients.py"
CONSTRUCTORS = {"Producer", "Consumer", "AdminClient", "SchemaRegistryClient"}
CONNECTION_KEYS = {"bootstrap.servers", "security.protocol", "sasl.username", "sasl.password"}

CLOUD = {
    "kafka_bootstrap_servers": "pkc-abc12.westeurope.azure.confluent.cloud:9092",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "PLAIN",
    "kafka_sasl_username": "API_KEY",
    "kafka_sasl_password": "API_SECRET",
    "schema_registry_url": "https://psrc-xyz.westeurope.azure.confluent.cloud",
    "schema_registry_user_info": "SR_KEY:SR_SECRET",
}


def _sources() -> list[Path]:
    roots = [ROOT / "services", ROOT / "infra", ROOT / "load", ROOT / "tests", ROOT / "pipelines"]
    exempt = (BUILDER, Path(__file__).resolve())  # the builder, and its own test
    return [p for r in roots for p in r.rglob("*.py") if ".venv" not in p.parts and p not in exempt]


def _literal_clients(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in CONSTRUCTORS:
                found.append(f"{path.relative_to(root)}:{node.lineno} {name}(...)")
        elif isinstance(node, ast.Constant) and node.value in CONNECTION_KEYS:
            found.append(f"{path.relative_to(root)}:{node.lineno} {node.value!r}")
    return found


def test_no_client_is_configured_anywhere_but_the_builder() -> None:
    found = [line for path in _sources() for line in _literal_clients(path)]
    assert found == [], "build clients with golive_eventing.clients:\n" + "\n".join(found)


def test_the_scan_finds_a_literal_client(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        'from confluent_kafka import Producer\np = Producer({"bootstrap.servers": "x"})\n'
    )
    assert _literal_clients(sneaky, tmp_path) == [
        "sneaky.py:2 Producer(...)",
        "sneaky.py:2 'bootstrap.servers'",
    ]


def test_plaintext_by_default_with_the_callers_keys_last() -> None:
    conf = kafka_config(Connection.exactly(), **{"group.id": "g", "client.id": "c"})
    assert conf == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
        "group.id": "g",
        "client.id": "c",
    }


def test_confluent_cloud_is_settings_only() -> None:
    cloud = Connection.exactly(**CLOUD)
    conf = kafka_config(cloud)
    assert conf["security.protocol"] == "SASL_SSL"
    assert (conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]) == (
        "PLAIN",
        "API_KEY",
        "API_SECRET",
    )
    assert registry_config(cloud) == {
        "url": CLOUD["schema_registry_url"],
        "basic.auth.credentials.source": "USER_INFO",
        "basic.auth.user.info": "SR_KEY:SR_SECRET",
    }
    assert cloud.registry_auth() == ("SR_KEY", "SR_SECRET")
    assert cloud.principal == "API_KEY"


def test_a_ca_bundle_is_passed_on_for_tls_only() -> None:
    ca = "/etc/golive/ca.pem"
    assert (
        kafka_config(Connection.exactly(**CLOUD, kafka_ssl_ca_location=ca))["ssl.ca.location"] == ca
    )
    assert "ssl.ca.location" not in kafka_config(Connection.exactly(kafka_ssl_ca_location=ca))


def test_sasl_without_credentials_is_refused_naming_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        Connection.exactly(kafka_security_protocol="SASL_SSL", kafka_sasl_username="only-a-user")
    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        Connection.exactly(kafka_security_protocol="SASL_TLS")
    with pytest.raises(ValidationError, match="`key:secret`"):
        Connection.exactly(schema_registry_user_info="no-colon")


def test_secrets_stay_out_of_reprs_and_logs() -> None:
    shown = repr(Connection.exactly(**CLOUD))
    assert "API_SECRET" not in shown and "SR_SECRET" not in shown


def test_a_connection_travels_to_a_child_process_as_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cloud = Connection.exactly(**CLOUD)
    for name, value in cloud.env().items():
        monkeypatch.setenv(name, value)
    assert Connection(_env_file=None) == cloud  # type: ignore[call-arg]
