"""`make load` / `make load-smoke`: locust's customers (load/locustfile.py), headless, gated on
load/slo.toml.

`make load` runs the `load` profile against the running system (`make run`). `make
load-smoke` (the pipeline's stage) runs the `smoke` profile against a system of its own: the
service processes on topics and groups of their own, on the test platform (ci-cluster-up).
locust writes its HTML report and CSV under var/load/<profile>/; this prints each gate, met or
missed and by how much, and exits 1 if any is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from golive_cli import slo
from golive_contracts.scopes import Scope
from golive_platform.config import PlatformConfig
from golive_platform.tokens import Issuer

HERE = Path(__file__).parent
SCOPES = (Scope.PLACE_ORDERS, Scope.READ_ORDERS, Scope.READ_AUDIT)


@dataclass(frozen=True)
class Target:
    order_url: str
    audit_url: str
    issuer: Issuer


@contextmanager
def running(config: PlatformConfig) -> Iterator[Target]:
    """The system `make run` started."""
    target = Target(
        f"http://{config.host}:{config.order_port}",
        f"http://{config.host}:{config.audit_port}",
        config.issuer(),
    )
    try:
        httpx.get(f"{target.order_url}/readyz", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise SystemExit(
            f"error: the system does not answer at {target.order_url} ({exc}): make run"
        ) from None
    yield target


@contextmanager
def own_system(data_dir: Path) -> Iterator[Target]:
    """The service processes on names of their own, on the test platform (already up)."""
    from golive_cli.recorder.environment import make_topics, running_system  # noqa: PLC0415
    from golive_cli.system import Cluster  # noqa: PLC0415
    from golive_platform.testing import suite_config  # noqa: PLC0415

    instance = f"load-{uuid.uuid4().hex[:8]}"
    cluster = Cluster.of(suite_config())
    names = make_topics(cluster, instance)
    with running_system(cluster, names, data_dir / instance, instance) as system:
        yield Target(system.order_url, system.audit_url, system.issuer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="load", help="a [profiles.*] of the SLO file")
    parser.add_argument("--slo", type=Path, default=HERE / "slo.toml")
    parser.add_argument("--own-system", action="store_true", help="start a system of its own")
    parser.add_argument("--out", type=Path, default=Path("var/load"))
    args = parser.parse_args()

    try:
        gates = slo.load(args.slo)
    except (slo.SloFileError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from None
    profile = gates.profiles.get(args.profile)
    if profile is None:
        known = ", ".join(gates.profiles)
        raise SystemExit(f"error: no profile {args.profile!r} in {args.slo} (it has {known})")
    out = args.out / args.profile
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("locust*"):
        old.unlink()

    config = PlatformConfig()
    # The own system's data (its token-signing key among it) stays out of var/load/, which CI
    # keeps as the run's report.
    target = own_system(Path("var/load-system")) if args.own_system else running(config)
    with target as system:
        token = system.issuer.token(*SCOPES, subject="load")
        print(
            f"locust: {profile.users} customers (spawned {profile.spawn_rate:g}/s) for "
            f"{profile.run_time_s} s against {system.order_url}",
            flush=True,
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(HERE / "locustfile.py"),
                "--headless",
                "--only-summary",
                "--host",
                system.order_url,
                "--users",
                str(profile.users),
                "--spawn-rate",
                str(profile.spawn_rate),
                "--run-time",
                f"{profile.run_time_s}s",
                "--stop-timeout",
                "15",
                "--csv",
                str(out / "locust"),
                "--html",
                str(out / "locust-report.html"),
                "--exit-code-on-error",
                "0",  # the gates below decide
            ],
            env={**os.environ, "LOAD_TOKEN": token, "LOAD_AUDIT_URL": system.audit_url},
            check=False,
        )
    stats = out / "locust_stats.csv"
    if done.returncode != 0 or not stats.is_file():
        raise SystemExit(f"error: locust exited {done.returncode} without its statistics")
    verdicts = slo.check(gates, args.profile, slo.read_stats(stats))
    print(f"\nSLO gates ({args.slo}, profile {args.profile}):\n{slo.report(verdicts)}")
    print(f"\nreport: {out / 'locust-report.html'}   csv: {out}/locust_*.csv")
    missed = [v for v in verdicts if not v.met]
    if missed:
        names = "; ".join(f"{v.gate.name} ({v.miss})" for v in missed)
        raise SystemExit(f"error: {len(missed)} SLO gate(s) missed: {names}")


if __name__ == "__main__":
    main()
