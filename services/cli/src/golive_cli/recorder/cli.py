"""The recorder's commands: golive capture | replay | regress | inspect | environment mark-test."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError

from golive_cli.recorder.desensitise import KEY_ENV

if TYPE_CHECKING:
    from golive_cli.recorder.capture import Window
    from golive_cli.recorder.environment import Cluster

# The commands import their machinery when they run, so `golive --help` and the platform
# commands start in a fraction of a second.

P = ParamSpec("P")
R = TypeVar("R")


def expected() -> tuple[type[Exception], ...]:
    """The failures a command reports as one line: bad input, or a cluster that does not answer."""
    import httpx  # noqa: PLC0415
    from confluent_kafka import KafkaException  # noqa: PLC0415
    from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: PLC0415
    from golive_eventing.serde import REGISTRY_UNREACHABLE  # noqa: PLC0415

    from golive_cli.recorder.archive import CaptureFileError  # noqa: PLC0415
    from golive_cli.recorder.capture import CaptureError  # noqa: PLC0415
    from golive_cli.recorder.desensitise import DesensitiseError, MissingKeyError  # noqa: PLC0415
    from golive_cli.recorder.environment import EnvironmentSetupError  # noqa: PLC0415
    from golive_cli.recorder.replay import ReplayError  # noqa: PLC0415
    from golive_cli.recorder.wire import RegistryError  # noqa: PLC0415

    return (
        CaptureError,
        CaptureFileError,
        ReplayError,
        RegistryError,
        MissingKeyError,
        DesensitiseError,
        EnvironmentSetupError,
        PlatformError,
        ValueError,
        KafkaException,
        SchemaRegistryError,
        httpx.HTTPError,
        *REGISTRY_UNREACHABLE,
    )


Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka (default: the local platform)."
    ),
]
Registry = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="SCHEMA_REGISTRY_URL",
        help="Schema registry, Confluent API (default: the local platform's).",
    ),
]
From = Annotated[str, typer.Option("--from", help="Window start, ISO 8601 with zone.")]
To = Annotated[str, typer.Option("--to", help="Window end (exclusive), ISO 8601 with zone.")]
Topics = Annotated[str, typer.Option("--topics", help="Comma-separated topics to read.")]


def fails_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """Expected failures become one `error: ...` line on stderr and exit code 1."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except expected() as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def parse_time(text: str, option: str) -> datetime:
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not an ISO 8601 time") from None
    if found.tzinfo is None:
        raise ValueError(f"{option} {text!r} has no time zone (add Z or +01:00)")
    return found


def window_of(start: str, end: str) -> Window:
    from golive_cli.recorder.capture import Window  # noqa: PLC0415

    return Window(parse_time(start, "--from"), parse_time(end, "--to"))


def _where(bootstrap: str | None, registry: str | None) -> Cluster:
    from golive_cli.recorder.environment import Cluster  # noqa: PLC0415

    return Cluster.chosen(bootstrap, registry)


def _topics(text: str) -> list[str]:
    found = [t.strip() for t in text.split(",") if t.strip()]
    if not found:
        raise ValueError("--topics names no topic")
    return found


def capture(
    start: From,
    end: To,
    out: Annotated[Path, typer.Option("--out", help="The capture file to write (.jsonl.gz).")],
    topics: Topics = "orders,payments",
    raw: Annotated[
        bool, typer.Option("--raw", help="Keep personal data (no desensitising).")
    ] = False,
    dev_key: Annotated[
        bool, typer.Option("--dev-key", help="Desensitise with the public development key.")
    ] = False,
    complete_journeys: Annotated[
        bool, typer.Option(help="Follow journeys that started in the window to their end.")
    ] = True,
    skew: Annotated[float, typer.Option(help="Seconds read past each edge (clock skew).")] = 30.0,
    extend: Annotated[
        float, typer.Option(help="Seconds past the window a journey may take to end.")
    ] = 300.0,
    stall_timeout: Annotated[
        float,
        typer.Option(
            min=1, help="Seconds without progress before giving up (not a limit on the whole)."
        ),
    ] = 60.0,
    bootstrap: Bootstrap = None,
    registry: Registry = None,
) -> None:
    """Capture a window of topics into one portable file, desensitised unless --raw."""
    from golive_cli.recorder.capture import CaptureOptions, capture_to_file  # noqa: PLC0415
    from golive_cli.recorder.desensitise import Tokeniser, capture_key, key_from_env  # noqa: PLC0415

    window = window_of(start, end)
    if raw and dev_key:
        raise ValueError("--raw and --dev-key contradict each other: choose one")
    tokeniser, key_id = None, None
    if not raw:
        key, key_id = capture_key(key_from_env(), dev=dev_key)
        tokeniser = Tokeniser(key)
    where = _where(bootstrap, registry)
    options = CaptureOptions(
        complete_journeys, timedelta(seconds=skew), timedelta(seconds=extend), stall_s=stall_timeout
    )
    manifest = capture_to_file(
        out,
        where.connection,
        _topics(topics),
        window,
        tokeniser,
        key_id,
        options,
    )
    kind = "raw (personal data kept)" if raw else f"desensitised (key id {key_id})"
    typer.echo(
        f"captured {sum(manifest.records.values())} records {manifest.records} into {out}, "
        f"{kind}; journeys {manifest.journeys}"
    )
    if manifest.undecodable:
        typer.echo(
            f"left out, undecodable: {manifest.undecodable} e.g. {manifest.undecodable_samples[0]}"
        )


def replay_command(
    file: Annotated[Path, typer.Argument(help="A capture file.")],
    to: Annotated[str, typer.Option("--to", help="The target Kafka's bootstrap servers.")],
    registry: Registry = None,
    topic_map: Annotated[
        list[str] | None, typer.Option("--topic-map", help="source=target, repeatable.")
    ] = None,
    speed: Annotated[str, typer.Option(help="1x keeps the relative timing, 10x, or max.")] = "1x",
    keep_timestamps: Annotated[
        bool, typer.Option(help="Publish with the captured timestamps instead of now.")
    ] = False,
    allow_any_target: Annotated[
        bool, typer.Option(help="Publish even into a cluster not declared a test environment.")
    ] = False,
) -> None:
    """Publish a capture into a test environment, registering its schemas there."""
    from golive_cli.recorder.archive import CaptureFile  # noqa: PLC0415
    from golive_cli.recorder.replay import parse_speed, parse_topic_map, replay  # noqa: PLC0415

    pace = parse_speed(speed)
    mapping = parse_topic_map(topic_map or [])
    loaded = CaptureFile(file)  # checked now, streamed as it is published
    result = replay(
        loaded,
        _where(to, registry).connection,
        topic_map=mapping,
        speed=pace,
        keep_timestamps=keep_timestamps,
        allow_any_target=allow_any_target,
    )
    rate = result.total / result.seconds if result.seconds else 0.0
    typer.echo(
        f"replayed {result.total} records {result.published} in {result.seconds:.1f} s "
        f"({rate:.0f}/s)"
    )


def regress(
    file: Annotated[Path, typer.Argument(help="A capture file.")],
    report: Annotated[Path, typer.Option(help="Where the JSON report goes.")] = Path(
        "var/regress-report.json"
    ),
    timeout: Annotated[float, typer.Option(help="Seconds for every journey to end.")] = 120.0,
    bootstrap: Bootstrap = None,
    registry: Registry = None,
) -> None:
    """Run this build's services on fresh topics, feed the capture's orders, diff the outputs."""
    from golive_cli.recorder.archive import read_capture  # noqa: PLC0415
    from golive_cli.recorder.environment import cluster_for_regress  # noqa: PLC0415
    from golive_cli.recorder.regress import regress as run_regress  # noqa: PLC0415

    loaded = read_capture(file)
    with cluster_for_regress(bootstrap, registry) as cluster:
        result = run_regress(loaded, cluster, name=str(file), timeout_s=timeout)
    typer.echo(result.text())
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result.to_json(), indent=2, default=str))
    typer.echo(f"report written to {report}")
    if not result.ok:
        raise typer.Exit(1)


def inspect(
    start: From,
    end: To,
    key: Annotated[str | None, typer.Option(help="Only this record key.")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="Only this journey.")] = None,
    source: Annotated[str, typer.Option(help="kafka or audit.")] = "kafka",
    audit_url: Annotated[str | None, typer.Option(help="The audit service (source audit).")] = None,
    topics: Topics = "orders,payments",
    show_personal: Annotated[bool, typer.Option(help="Do not mask personal fields.")] = False,
    bootstrap: Bootstrap = None,
    registry: Registry = None,
) -> None:
    """A window's events as a timeline, personal fields masked."""
    from golive_contracts.scopes import Scope  # noqa: PLC0415

    from golive_cli.recorder import inspect as timeline  # noqa: PLC0415
    from golive_cli.system import api_headers  # noqa: PLC0415

    window = window_of(start, end)
    if source == "kafka":
        where = _where(bootstrap, registry)
        rows = timeline.from_kafka(
            where.connection,
            _topics(topics),
            window,
            key=key,
            correlation_id=correlation_id,
            show_personal=show_personal,
        )
    elif source == "audit":
        config = PlatformConfig()
        url = audit_url or f"http://{config.host}:{config.audit_port}"
        scopes = (Scope.READ_AUDIT, Scope.READ_PERSONAL_DATA)[: 2 if show_personal else 1]
        rows = timeline.from_audit(
            url,
            api_headers(config, *scopes),
            window,
            key=key,
            correlation_id=correlation_id,
            show_personal=show_personal,
        )
    else:
        raise ValueError(f"--source {source!r}: use kafka or audit")
    for row in rows:
        typer.echo(row.line())
    typer.echo(f"{len(rows)} events")


def mark_test(
    bootstrap: Annotated[str, typer.Option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS")],
) -> None:
    """Declare a cluster a test environment: `golive replay` publishes only into those."""
    from golive_cli.recorder.replay import mark_test_environment  # noqa: PLC0415

    created = mark_test_environment(_where(bootstrap, None).connection)
    typer.echo(f"{bootstrap} is {'now' if created else 'already'} declared a test environment")


def register(app: typer.Typer) -> None:
    app.command("capture")(fails_cleanly(capture))
    app.command("replay")(fails_cleanly(replay_command))
    app.command("regress")(fails_cleanly(regress))
    app.command("inspect")(fails_cleanly(inspect))
    environment = typer.Typer(help="What kind of environment a cluster is.")
    environment.command("mark-test")(fails_cleanly(mark_test))
    app.add_typer(environment, name="environment")


__all__ = ["KEY_ENV", "register"]
