"""make soak: orders at a fixed rate for a bounded time, one fault and one route flip a minute,
then the books.

Runs its own platform instance (var/soak-platform, ports 29xxx: never the one `make run` or the
test suite uses), the services (payment's router and both version slots, a second instance of
the blue slot) on topics of its own. A service that exits by itself (crash-only, e.g. exit code
70) is restarted, as a supervisor would, and reported. Faults, in turn: kill -9 payment's
router, kill -9 the process manager, kill -9 the blue slot, SIGTERM audit, kill -9 the order
service, kill -9 the green slot, a broker restart (SIGTERM, start again on the same data); each
is restarted right after. Half a minute after each fault payment's route moves on, in turn:
shadow, canary 50%, switch, rollback (`golive release`, on the soak's flags file and topics).
At the end every order must have exactly one payment event and exactly one end, whichever
version decided it; the figures go to var/bench/soak.json.

    make soak                     # 10 minutes at 40 orders/s
    make soak ARGS="--minutes 3 --rate 20"
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "load"))
from bench_platform import write_figures  # noqa: E402
from golive_cli.main import app  # noqa: E402
from golive_eventing.flags import read, write  # noqa: E402
from golive_platform.config import SERVICE_PORTS, PlatformConfig  # noqa: E402
from golive_platform.platform import Platform  # noqa: E402
from golive_platform.process import free_port  # noqa: E402
from golive_platform.testing import Cluster, config_env, suite_config  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from tests.helpers import Topics, make_topics  # noqa: E402
from tests.instances import Broker  # noqa: E402
from tests.reliability.harness import (  # noqa: E402
    Outcome,
    Services,
    new_orders,
    outcome,
    publish,
)

FAULTS = [
    ("kill -9 payment (its router)", "payment", True),
    ("kill -9 order process manager", "order-pm", True),
    ("kill -9 payment-blue", "payment-blue", True),
    ("SIGTERM audit", "audit", False),
    ("kill -9 order (API + projection)", "order", True),
    ("kill -9 payment-green", "payment-green", True),
    ("restart the Kafka broker", "kafka", False),
]
SERVICES = (
    "order",
    "order-pm",
    "payment",
    "payment-blue",
    "payment-blue-b",
    "payment-green",
    "audit",
)
# Each flip as an operator takes it: `golive release`, recorded on the soak's releases topic
# before the route changes (a flip that cannot be recorded, the broker being away, is not taken).
ROUTES: list[tuple[str, ...]] = [
    ("shadow",),
    ("canary", "--percent", "50"),
    ("switch",),
    ("rollback",),
]


def _flip(config: PlatformConfig, cluster: Cluster, topics: Topics, step: int) -> str:
    """The route's next step, by `golive release` (in process: no seconds of imports)."""
    action = ROUTES[step % len(ROUTES)]
    argv = ["release", action[0], "payment", *action[1:], "--flags", str(config.flags_file)]
    argv += ["--suffix", topics.group_prefix.removesuffix("."), "--reason", "make soak"]
    env = {**config_env(config), **cluster.connection.env()}
    done = CliRunner().invoke(app, argv, env=env)
    what = " ".join(action)
    return what if done.exit_code == 0 else f"{what}: refused: {done.output.strip()}"


def _inject(services: Services, broker: Broker, name: str, *, kill: bool) -> None:
    """One fault, and the restart after it."""
    if name == "kafka":
        broker.stop()
        broker.start()
        return
    if kill:
        services.kill(name)
    else:
        services.stop(name)
    services.start(name)


def _drained(cluster: Cluster, topics: Topics, ids: list[str], timeout_s: float) -> Outcome:
    """The outcome once every order has a payment and an end, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = outcome(cluster, topics)
        if all(found.payments[i] and found.terminal[i] for i in ids) or time.monotonic() > deadline:
            return found
        time.sleep(2)  # the polling interval of a bounded wait


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="orders per second")
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    args = parser.parse_args()

    config = suite_config(
        data_dir=ROOT / "var" / "soak-platform",
        kafka_port=29092,
        kafka_controller_port=29093,
        registry_port=28081,
        registry_management_port=29001,
        postgres_port=25433,
        **{name: free_port() for name in SERVICE_PORTS},
    )
    platform = Platform(config, echo=lambda _line: None)
    started_platform = platform.ensure_up()
    try:
        return _soak(args, config)
    finally:
        if started_platform:
            platform.down()


def _soak(args: argparse.Namespace, config: PlatformConfig) -> int:
    cluster = Cluster("local", config.connection(), None, config.service_logins())
    topics = make_topics(cluster, f"soak{uuid.uuid4().hex[:8]}", partitions=6)
    services = Services.on(cluster, topics, config)
    broker = Broker(config)
    placed = []
    faults: list[dict[str, object]] = []
    flips: list[dict[str, object]] = []
    exits: list[dict[str, object]] = []
    write(config.flags_file, read(config.flags_source))  # the route at rest: every order to blue
    try:
        services.start(*SERVICES)
        began = time.monotonic()
        next_fault = began + args.fault_every
        next_flip = began + args.fault_every / 2
        while time.monotonic() - began < args.minutes * 60:
            batch = new_orders(int(args.rate))
            publish(cluster, topics, batch, per_second=args.rate)
            placed += batch
            for name in services.revive():  # crash-only exits: restart them, as a supervisor would
                exits.append({"service": name, "at_s": round(time.monotonic() - began, 1)})
                print(f"{exits[-1]['at_s']:6.1f}s  {name} had exited: restarted", flush=True)
            if time.monotonic() >= next_fault:
                what, name, kill = FAULTS[len(faults) % len(FAULTS)]
                at = time.monotonic() - began
                _inject(services, broker, name, kill=kill)
                faults.append(
                    {
                        "fault": what,
                        "at_s": round(at, 1),
                        "back_after_s": round(time.monotonic() - began - at, 1),
                    }
                )
                print(f"{at:6.1f}s  {what}: back after {faults[-1]['back_after_s']} s", flush=True)
                next_fault += args.fault_every
            if time.monotonic() >= next_flip:
                at = time.monotonic() - began
                flips.append(
                    {"route": _flip(config, cluster, topics, len(flips)), "at_s": round(at, 1)}
                )
                print(f"{at:6.1f}s  payment's route: {flips[-1]['route']}", flush=True)
                next_flip += args.fault_every
        published_s = time.monotonic() - began
        ids = [str(o.order_id) for o in placed]
        found = _drained(cluster, topics, ids, timeout_s=300)
        settled_s = time.monotonic() - began - published_s
        figures = {
            "minutes": args.minutes,
            "rate_per_s": args.rate,
            "orders": len(ids),
            "faults": faults,
            "route_flips": flips,
            "decided_by_version": dict(
                Counter(found.versions[i] for i in ids if i in found.versions)
            ),
            "crash_only_exits": exits,
            "ended": sum(1 for i in ids if found.terminal[i]),
            "not_ended": sum(1 for i in ids if not found.terminal[i]),
            "duplicate_payments": sum(1 for i in ids if found.payments[i] > 1),
            "duplicate_ends": sum(1 for i in ids if found.terminal[i] > 1),
            "cancelled_by_payment_timeout": sum(
                1 for i in ids if found.cancel_reasons.get(i) == "payment_timeout"
            ),
            "drained_after_last_order_s": round(settled_s, 1),
        }
    finally:
        services.stop_all()
    write_figures(config, "soak", figures)
    for key, value in figures.items():
        if key not in ("faults", "route_flips", "crash_only_exits"):
            print(f"{key:>30}: {value}")
    clean = not (figures["not_ended"] or figures["duplicate_payments"] or figures["duplicate_ends"])
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
