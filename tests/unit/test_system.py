"""The services' environment as `make run`, the e2e tests and golive regress start them."""

from __future__ import annotations

from golive_cli.system import service_specs
from golive_contracts.topology import Names
from golive_platform.config import PlatformConfig


def test_names_of_ones_own_reach_every_service() -> None:
    specs = service_specs(PlatformConfig(), names=Names.suffixed("regress-1"))
    assert {s.env["KAFKA_GROUP_PREFIX"] for s in specs} == {"regress-1."}
    assert {s.env["ORDERS_TOPIC"] for s in specs} == {"orders.regress-1"}
    assert {s.env["PAYMENTS_TOPIC"] for s in specs} == {"payments.regress-1"}


def test_without_a_prefix_the_shells_stands() -> None:
    """The launcher lays each spec's env over os.environ: an empty value would override the
    KAFKA_GROUP_PREFIX an operator set for `make run`."""
    assert all("KAFKA_GROUP_PREFIX" not in s.env for s in service_specs(PlatformConfig()))


def test_the_viewers_setting_points_every_service_at_them() -> None:
    config = PlatformConfig(viewers=True, zipkin_port=19411, victoriametrics_port=18428)
    metrics = "http://127.0.0.1:18428/opentelemetry/v1/metrics"
    for spec in service_specs(config):
        assert spec.env["OTEL_TRACES_EXPORTER"] == "zipkin", spec.name
        assert spec.env["OTEL_EXPORTER_ZIPKIN_ENDPOINT"] == "http://127.0.0.1:19411/api/v2/spans"
        assert spec.env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == metrics, spec.name
    for spec in service_specs(PlatformConfig()):
        assert "OTEL_TRACES_EXPORTER" not in spec.env, spec.name
        assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" not in spec.env, spec.name
