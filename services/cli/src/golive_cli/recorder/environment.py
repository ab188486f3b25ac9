"""A clean environment for a build: topics of its own on a cluster, the four real service processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from golive_contracts import topology
from golive_contracts.topology import Names
from golive_eventing.flags import read
from golive_platform.config import SERVICE_PORTS, PlatformConfig
from golive_platform.process import free_port
from golive_platform.services import ServiceSpec
from golive_platform.tokens import Issuer

from golive_cli import release
from golive_cli.system import Cluster, TopicSetupError, create_topics, service_specs, started

__all__ = [
    "Cluster",
    "EnvironmentSetupError",
    "RunningSystem",
    "cluster_for_regress",
    "make_topics",
    "running_system",
]

Customise = Callable[[list[ServiceSpec]], list[ServiceSpec]]


class EnvironmentSetupError(RuntimeError):
    """The environment could not be made (topics, schemas, a service that did not start)."""


@dataclass(frozen=True)
class RunningSystem:
    cluster: Cluster
    names: Names
    order_url: str
    audit_url: str
    issuer: Issuer  # whose API tokens the services take


def make_topics(cluster: Cluster, instance: str, partitions: int = 6) -> Names:
    """An environment's names (`orders.<instance>`, groups `<instance>.<group>`) and every topic
    the topology derives for them, schemas registered."""
    names = Names.suffixed(instance)
    try:
        create_topics(cluster, names, partitions)
    except TopicSetupError as exc:
        raise EnvironmentSetupError(str(exc)) from exc
    return names


@contextmanager
def running_system(
    cluster: Cluster,
    names: Names,
    data_dir: Path,
    instance: str,
    customise: Customise | None = None,
) -> Iterator[RunningSystem]:
    """The candidate build's four service processes on `names`, stopped on exit. Their consumer
    groups and transactional ids carry the names' prefix: the same cluster may run the real
    services, and a group shared with them would rebalance both at every start and stop."""
    config = PlatformConfig.model_validate(
        {
            "data_dir": data_dir,
            "viewers": False,  # make run's viewer is not this environment's
            **{name: free_port() for name in SERVICE_PORTS},
        }
    )
    # The version slot(s) a fresh environment's route sends orders to (the committed flags).
    route = release.route(read(config.ensure_flags()), topology.PAYMENT.name)
    specs = service_specs(
        config, cluster, names, env={"INSTANCE_ID": instance}, slots=route.deciding
    )
    with started(config, customise(specs) if customise else specs):
        yield RunningSystem(
            cluster,
            names,
            order_url=f"http://{config.host}:{config.order_port}",
            audit_url=f"http://{config.host}:{config.audit_port}",
            issuer=config.issuer(),
        )


@contextmanager
def cluster_for_regress(bootstrap: str | None, registry: str | None) -> Iterator[Cluster]:
    """The given cluster; else the local platform's Kafka and registry, started if down (and
    stopped after, if this started it)."""
    from golive_platform.platform import Platform  # noqa: PLC0415

    if bootstrap:
        yield Cluster.chosen(bootstrap, registry)
        return
    config = PlatformConfig()
    platform = Platform(config, echo=lambda _line: None)
    started = platform.ensure_up()
    try:
        yield Cluster.chosen(None, registry)
    finally:
        if started:
            platform.down()
