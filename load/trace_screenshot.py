"""`make trace-screenshot`: one order's trace in the local viewer, as a picture for the docs.

Against the running system with its trace viewer (`GOLIVE_VIEWERS=1 make up`): places one
order, waits until it is final and until the viewer holds every span of its trace, then has a
headless Chromium take the viewer's page of that trace (docs/img/order-trace.png by default).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from golive_cli.demo import order_body, trace_id
from golive_contracts.scopes import Scope
from golive_platform import process, viewer
from golive_platform.config import PlatformConfig
from golive_platform.tokens import bearer

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Spans reach the viewer in batches (OTEL_BSP_SCHEDULE_DELAY, 5 s by default): a trace whose
# span count held this long after its order ended is taken as complete.
SETTLED_S = 7.0


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


def place(config: PlatformConfig) -> tuple[str, str]:
    """An order, and the trace of its request, once the order is final."""
    base = f"http://{config.host}:{config.order_port}"
    token = config.issuer().token(Scope.PLACE_ORDERS, Scope.READ_ORDERS, subject="screenshot")
    with httpx.Client(base_url=base, headers=bearer(token), timeout=15) as http:
        answer = http.post(
            "/orders",
            json=order_body("tok_visa_4242", "EUR", 2, 1250, 0),
            headers={"Idempotency-Key": f"screenshot-{uuid.uuid4()}"},
        )
        if answer.status_code != 202:
            fail(f"POST /orders answered {answer.status_code}: {answer.text}")
        order_id, trace = answer.json()["order_id"], trace_id(answer)
        if trace is None:
            fail("the order API answered without a traceresponse header")
        assert trace is not None
        deadline = time.monotonic() + 30
        while http.get(f"/orders/{order_id}").json()["status"] == "PLACED":
            if time.monotonic() > deadline:
                fail(f"order {order_id} was not final after 30 s")
            time.sleep(0.1)  # polling the running system, bounded by the deadline
    return order_id, trace


def settled(config: PlatformConfig, trace: str) -> list[dict[str, Any]]:
    """The trace's spans, once their count has held for SETTLED_S."""
    url = f"{config.zipkin_url}/api/v2/trace/{trace}"
    deadline = time.monotonic() + 60
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        answer = httpx.get(url, timeout=5)
        spans: list[dict[str, Any]] = answer.json() if answer.status_code == 200 else []
        if len(spans) != seen:
            seen, since = len(spans), time.monotonic()
        elif spans and time.monotonic() - since >= SETTLED_S:
            return spans
        time.sleep(0.5)  # polling the viewer, bounded by the deadline
    fail(f"trace {trace} did not settle in the viewer within 60 s ({seen} spans)")
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/img/order-trace.png"))
    parser.add_argument("--size", default="1600,1000", help="the browser window, WIDTH,HEIGHT")
    args = parser.parse_args()

    config = PlatformConfig()
    running = process.read(config.run_dir, viewer.ZipkinNode.name)
    if running is None or not running.alive or not viewer.zipkin_ready(config):
        fail("no trace viewer runs: start the system with GOLIVE_VIEWERS=1 make up")
    browser = next((found for b in BROWSERS if (found := shutil.which(b))), None)
    if browser is None:
        fail(f"no headless browser ({', '.join(BROWSERS)}): make chromium-install")
    assert browser is not None

    order_id, trace = place(config)
    spans = settled(config, trace)
    services = sorted({s["localEndpoint"]["serviceName"] for s in spans})
    page = viewer.traces_url(config) + trace
    args.out.parent.mkdir(parents=True, exist_ok=True)
    taken = args.out.with_name(f".{args.out.name}.new")
    taken.unlink(missing_ok=True)
    shot = subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",  # run as root in CI containers; the page is our own, on loopback
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={args.size}",
            "--virtual-time-budget=10000",
            f"--screenshot={taken.resolve()}",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if shot.returncode != 0 or not taken.is_file():
        fail(f"{browser} exited {shot.returncode}: {shot.stderr[-800:]}")
    taken.replace(args.out)
    print(f"order {order_id}: {len(spans)} spans across {', '.join(services)}")
    print(f"trace {page}\n  -> {args.out}")


if __name__ == "__main__":
    main()
