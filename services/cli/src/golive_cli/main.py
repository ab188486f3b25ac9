"""golive: the project's command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError

from golive_cli import deploy
from golive_cli.recorder.cli import register as register_recorder

if TYPE_CHECKING:
    from golive_contracts.events import ReleaseRouteChanged
    from golive_contracts.topology import Names
    from golive_eventing.rebuild import Progress
    from golive_platform.platform import Platform

    from golive_cli.release import Route
    from golive_cli.shadow import Comparison

# Commands import what they use when they run: `golive platform status` should not pay for
# SQLAlchemy, the schema registry client and the rebuild machinery (seconds on a small machine).

app = typer.Typer(help="Golive: the event-sourced reference application.", no_args_is_help=True)
platform_app = typer.Typer(help="The local platform: Kafka, the schema registry, PostgreSQL.")
topics_app = typer.Typer(help="Topics as code (infra/topics.yaml).")
schemas_app = typer.Typer(help="The contracts' Avro schemas in the registry.")
app.add_typer(platform_app, name="platform")
app.add_typer(topics_app, name="topics")
dlq_app = typer.Typer(help="Dead-letter topics (<topic>.<group>.dlq).")
app.add_typer(schemas_app, name="schemas")
app.add_typer(dlq_app, name="dlq")
acls_app = typer.Typer(help="ACLs as code: what each service may do, from the topology.")
app.add_typer(acls_app, name="acls")
credentials_app = typer.Typer(help="The local platform's SASL/SCRAM logins (docs/security.md).")
app.add_typer(credentials_app, name="credentials")
register_recorder(app)
flags_app = typer.Typer(
    help="Feature flags (infra/flags/flags.json, flagd's format; docs/flags.md)."
)
app.add_typer(flags_app, name="flags")
release_app = typer.Typer(
    help="Releases by routing: a routed group's version slots, switched by its route "
    "(ADR 0012, docs/runbooks/release-a-new-version.md)."
)
app.add_typer(release_app, name="release")
datadog_app = typer.Typer(
    help="Datadog as code: infra/datadog/ (dashboard, monitors, SLOs; docs/observability.md)."
)
app.add_typer(datadog_app, name="datadog")
deploy_app = typer.Typer(help="The go-live path: Kubernetes manifests and a blue/green rollout.")
app.add_typer(deploy_app, name="deploy")

P = ParamSpec("P")
R = TypeVar("R")

WithPostgres = Annotated[
    bool,
    typer.Option(
        "--postgres/--no-postgres", envvar="GOLIVE_WITH_POSTGRES", help="Also start PostgreSQL."
    ),
]


def fails_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """A PlatformError becomes its one-line cause on stderr (and any detail), exit code 1."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PlatformError as exc:
            typer.echo(f"error: {exc}", err=True)
            if exc.detail:
                typer.echo("  " + exc.detail.replace("\n", "\n  "), err=True)
            raise typer.Exit(1) from None

    return wrapper


def _platform(with_postgres: bool = False) -> Platform:
    from golive_cli.system import system  # noqa: PLC0415

    return system(PlatformConfig(), with_postgres=with_postgres, echo=typer.echo)


@platform_app.command()
@fails_cleanly
def run(postgres: WithPostgres = False) -> None:
    """Start everything and stay in the foreground until Ctrl-C, which stops it all."""
    raise typer.Exit(_platform(postgres).run_foreground())


@platform_app.command()
@fails_cleanly
def up(postgres: WithPostgres = False) -> None:
    """Start everything in the background."""
    platform = _platform(postgres)
    typer.echo(platform.describe(platform.up()))


@platform_app.command()
@fails_cleanly
def down() -> None:
    """Stop everything that `up` or `run` started."""
    stopped = _platform().down()
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@platform_app.command()
@fails_cleanly
def status() -> None:
    """What runs, whether it answers, and where. Exit 1 if anything is down."""
    rows = _platform().status()
    if not rows:
        typer.echo("the platform is down (`make up` or `make run` starts it)")
        raise typer.Exit(1)
    width = max(len(row.name) for row in rows)
    for row in rows:
        state = "ready" if row.ready else ("starting/unhealthy" if row.alive else "dead")
        typer.echo(f"{row.name:<{width}} {state:<19} pid {row.pid:<8} {row.endpoint}")
    if not all(row.ready for row in rows):
        raise typer.Exit(1)


@platform_app.command()
@fails_cleanly
def logs(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1)] = 30,
) -> None:
    """The tail of every component's log."""
    paths = [str(path) for path in _platform().log_files()]
    if not paths:
        typer.echo("no logs: the platform has not run in this data dir")
        raise typer.Exit(1)
    argv = ["tail", f"-n{lines}", *(["-F"] if follow else []), *paths]
    raise typer.Exit(subprocess.call(argv))


@platform_app.command()
@fails_cleanly
def clean() -> None:
    """Stop everything and delete the platform's data (var/). The artifact cache is kept."""
    platform = _platform()
    platform.clean()
    typer.echo(f"removed {platform.config.data_dir}")


@platform_app.command("fetch")
@fails_cleanly
def fetch_artifacts() -> None:
    """Resolve Kafka and Apicurio Registry from Maven Central into the cache (once)."""
    from golive_platform.artifacts import fetch  # noqa: PLC0415

    artifacts = fetch(PlatformConfig())
    typer.echo(f"kafka    {artifacts.kafka_libs}\nregistry {artifacts.registry_home}")


@topics_app.command("apply")
@fails_cleanly
def topics_apply(
    env: Annotated[str, typer.Option(help="Environment of topics.yaml to apply.")] = "local",
    bootstrap: Annotated[
        str | None, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka to apply to.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Add partitions to keyed topics too.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, change nothing.")] = False,
    file: Annotated[
        Path | None, typer.Option(help="Catalogue (default infra/topics.yaml).")
    ] = None,
) -> None:
    """Make Kafka's topics match infra/topics.yaml; exit 1 if drift is left that apply cannot fix."""
    from golive_platform.kafka import admin_client  # noqa: PLC0415
    from golive_platform.topics import apply, load_catalogue, resolve  # noqa: PLC0415

    config = PlatformConfig()
    specs = resolve(load_catalogue(file or config.topics_file), env)
    from golive_cli.system import Cluster  # noqa: PLC0415

    connection = Cluster.chosen(bootstrap).connection
    report = apply(admin_client(connection), specs, force=force, dry_run=dry_run)
    for change in report.changes:
        typer.echo(str(change))
    typer.echo(f"{len(report.changed)} changed, {len(report.unresolved)} left as they are")
    if report.unresolved:
        raise typer.Exit(1)


@acls_app.command("apply")
@fails_cleanly
def acls_apply(
    bootstrap: Annotated[
        str | None,
        typer.Option(
            envvar="KAFKA_BOOTSTRAP_SERVERS",
            help="Kafka to apply to (default: the local platform); its login from the environment.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, change nothing.")] = False,
    principal: Annotated[
        list[str] | None,
        typer.Option(
            help="SERVICE=PRINCIPAL, where a service logs in under another name, e.g. "
            "payment=sa-abc123 on Confluent Cloud (repeat for each).",
        ),
    ] = None,
) -> None:
    """Grant each service exactly what the topology says on the default names; report drift
    (grants on those resources the topology does not declare) and remove it."""
    from golive_contracts.access import logging_in_as  # noqa: PLC0415
    from golive_platform import acls  # noqa: PLC0415
    from golive_platform.kafka import admin_client  # noqa: PLC0415
    from golive_platform.platform import Platform  # noqa: PLC0415

    from golive_cli.system import Cluster  # noqa: PLC0415

    named: dict[str, str] = {}
    for pair in principal or []:
        service, _, login = pair.partition("=")
        if not service or not login:
            raise PlatformError(f"--principal {pair!r}: use SERVICE=PRINCIPAL, e.g. payment=sa-1")
        named[service] = login.removeprefix("User:")
    granted, scope = Platform(PlatformConfig()).access()
    try:
        granted = logging_in_as(granted, named)
    except ValueError as exc:
        raise PlatformError(f"--principal: {exc}") from exc
    admin = admin_client(Cluster.chosen(bootstrap).connection)
    report = acls.apply(admin, granted, scope, dry_run=dry_run)
    verb = "would " if dry_run else ""
    for line in report.created:
        typer.echo(f"{verb}grant   {line}")
    for line in report.deleted:
        typer.echo(f"{verb}remove  {line}  (drift: not in the topology)")
    typer.echo(
        f"{len(report.created)} granted, {len(report.deleted)} removed, "
        f"{report.unchanged} unchanged"
    )


@credentials_app.command("rotate")
@fails_cleanly
def credentials_rotate(
    principal: Annotated[str, typer.Argument(help="A service, or registry.")],
) -> None:
    """A new password for PRINCIPAL, stored in the broker and the credentials file; restart
    what logs in as it (make down && make up) to use it."""
    from golive_platform import credentials  # noqa: PLC0415
    from golive_platform.kafka import ensure_users  # noqa: PLC0415

    config = PlatformConfig()
    try:
        rotated = credentials.rotate(config.credentials_home, principal)
    except credentials.CredentialsError as exc:
        raise PlatformError(str(exc)) from exc
    ensure_users(config)
    typer.echo(
        f"rotated {principal!r} in {rotated.path} and in the broker; its processes log in "
        "with the new password when they start next"
    )


@credentials_app.command("init")
@fails_cleanly
def credentials_init() -> None:
    """Make the secrets this install does not have yet (the SASL logins, the API token signing
    key) and say where they are. make run does it itself; docker compose runs it once."""
    from golive_platform import credentials  # noqa: PLC0415

    config = PlatformConfig()
    try:
        logins = credentials.load(config.credentials_home)
    except credentials.CredentialsError as exc:
        raise PlatformError(str(exc)) from exc
    issuer = config.issuer()
    typer.echo(f"logins             {logins.path}")
    typer.echo(f"API token keys     {issuer.jwks_path}")
    typer.echo(f"token signing key  {issuer.key_path}")


@credentials_app.command("rotate-token-key")
@fails_cleanly
def credentials_rotate_token_key() -> None:
    """A new signing key for local API tokens; tokens signed with the previous key stay good
    until they expire (the services read the new key set when they meet the new key)."""
    kid = PlatformConfig().issuer().rotate()
    typer.echo(f"new token signing key {kid}; `golive token` signs with it from now on")


@app.command()
@fails_cleanly
def token(
    scopes: Annotated[
        list[str] | None,
        typer.Argument(
            help="Scopes: orders:write, orders:read, payments:read, audit:read, audit:pii."
        ),
    ] = None,
    subject: Annotated[
        str, typer.Option(help="Who the token is for (its sub).")
    ] = "local-developer",
    ttl: Annotated[int, typer.Option(help="Seconds it is good for.", min=1, max=86400)] = 3600,
) -> None:
    """Print an API access token of the local platform for SCOPES (curl -H "Authorization:
    Bearer $(uv run golive token orders:read)"). Elsewhere your identity provider issues them."""
    from golive_platform.tokens import TokenError, scopes_named  # noqa: PLC0415

    try:
        chosen = scopes_named(scopes or [])
    except TokenError as exc:
        raise PlatformError(str(exc)) from exc
    typer.echo(PlatformConfig().issuer().token(*chosen, subject=subject, ttl_s=ttl))


@schemas_app.command("register")
@fails_cleanly
def schemas_register(
    registry: Annotated[
        str | None,
        typer.Option(
            envvar="SCHEMA_REGISTRY_URL",
            help="Registry to register in (default: the local platform's); its credentials "
            "from SCHEMA_REGISTRY_USER_INFO.",
        ),
    ] = None,
) -> None:
    """Register every committed schema version (FULL_TRANSITIVE per subject). Services never do."""
    from golive_cli.system import Cluster, register_schemas  # noqa: PLC0415

    target = Cluster.chosen(None, registry).connection
    try:
        register_schemas(PlatformConfig(), target)
    except Exception as exc:  # the registry's errors name the subject and the rule
        raise PlatformError(f"schema registration failed: {exc}") from exc
    typer.echo(f"registered the schemas in {target.schema_registry_url}")


@flags_app.command("check")
@fails_cleanly
def flags_check(
    file: Annotated[
        Path | None,
        typer.Argument(help="Flags file (default: infra/flags/flags.json)."),
    ] = None,
) -> None:
    """A flags file against flagd's schema and the declared flags: exit 1 naming the line."""
    from golive_eventing.flags import FlagsFileError  # noqa: PLC0415

    from golive_cli.flags_check import SchemaFetchError, check_file, flagd_schema  # noqa: PLC0415

    config = PlatformConfig()
    path = file or config.flags_source
    try:
        check_file(path, flagd_schema(config.cache_dir))
    except (FlagsFileError, SchemaFetchError) as exc:
        raise PlatformError(str(exc)) from None
    typer.echo(f"{path}: valid (flagd's schema, and every declared flag as declared)")


DatadogFolder = Annotated[
    Path | None, typer.Option("--folder", help="The definitions (default: infra/datadog).")
]


def _datadog_definitions(folder: Path | None) -> Any:
    from golive_cli import datadog  # noqa: PLC0415

    where = folder or PlatformConfig().root / "infra" / "datadog"
    try:
        definitions = datadog.load(where)
    except (OSError, datadog.DefinitionError) as exc:
        raise PlatformError(str(exc)) from None
    found = datadog.problems(definitions)
    if found:
        raise PlatformError(f"{where}: {len(found)} problem(s)", detail="\n".join(found))
    return definitions


@datadog_app.command("check")
@fails_cleanly
def datadog_check(folder: DatadogFolder = None) -> None:
    """Every definition loads into the API's models and names only metrics and tags the
    services emit: exit 1 naming each problem."""
    d = _datadog_definitions(folder)
    typer.echo(
        f"valid: {len(d.dashboards)} dashboard(s), {len(d.monitors)} monitor(s), "
        f"{len(d.slos)} SLO(s)"
    )


@datadog_app.command("apply")
@fails_cleanly
def datadog_apply(
    folder: DatadogFolder = None,
    dry_run: Annotated[bool, typer.Option(help="Say what would be pushed; push nothing.")] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="DD_API_KEY", help="Datadog API key.")
    ] = None,
    app_key: Annotated[
        str | None, typer.Option(envvar="DD_APP_KEY", help="Datadog application key.")
    ] = None,
    site: Annotated[str | None, typer.Option(envvar="DD_SITE", help="e.g. datadoghq.eu.")] = None,
    host: Annotated[
        str | None, typer.Option(help="The API's base URL instead of the site's (a test's fake).")
    ] = None,
) -> None:
    """Create what is missing and update what differs (dashboards by title, monitors and SLOs
    by name): idempotent. Without DD_API_KEY and DD_APP_KEY, a dry run."""
    from golive_cli import datadog  # noqa: PLC0415

    d = _datadog_definitions(folder)
    if dry_run or not (api_key and app_key):
        why = "--dry-run" if dry_run else "no DD_API_KEY and DD_APP_KEY"
        typer.echo(f"dry run ({why}): would apply")
        for title in [x["title"] for x in d.dashboards]:
            typer.echo(f"  dashboard {title!r}")
        for name in [x["name"] for x in d.monitors]:
            typer.echo(f"  monitor {name!r}")
        for name in [x["name"] for x in d.slos]:
            typer.echo(f"  SLO {name!r}")
        return
    try:
        done = datadog.apply(d, datadog.configuration(api_key, app_key, site, host))
    except Exception as exc:  # the API's refusal, said in its words
        raise PlatformError(f"datadog apply: {exc}") from None
    for verb, labels in (("created", done.created), ("updated", done.updated)):
        for label in labels:
            typer.echo(f"{verb} {label}")
    typer.echo(
        f"{len(done.created)} created, {len(done.updated)} updated, {len(done.unchanged)} unchanged"
    )


@schemas_app.command("check")
@fails_cleanly
def schemas_check(
    against_ref: Annotated[
        str | None,
        typer.Option(
            help="Git ref whose committed schema versions to check against (no registry)."
        ),
    ] = None,
    registry_url: Annotated[
        str | None, typer.Option(envvar="SCHEMA_REGISTRY_URL", help="Registry to check against.")
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option(help="logical=actual topic name in the registry, e.g. orders=orders.staging."),
    ] = None,
) -> None:
    """The FULL_TRANSITIVE gate: exit 1 naming each subject, field and rule that breaks it."""
    from golive_cli.schema_check import run_check  # noqa: PLC0415
    from golive_cli.schema_gate import GateError  # noqa: PLC0415

    topics = dict(item.split("=", 1) for item in topic or [] if "=" in item)
    if len(topics) != len(topic or []):
        raise PlatformError("--topic takes logical=actual, e.g. --topic orders=orders.staging")
    try:
        code = run_check(
            typer.echo, against_ref=against_ref, registry_url=registry_url, topics=topics or None
        )
    except GateError as exc:
        raise PlatformError(f"schema gate could not run: {exc}") from exc
    raise typer.Exit(code)


@schemas_app.command("write")
@fails_cleanly
def schemas_write() -> None:
    """Commit each changed event schema as its next version file (vN+1.avsc); never rewrites one."""
    from golive_contracts.avro import write_schemas  # noqa: PLC0415

    written = write_schemas()
    for path in written:
        typer.echo(f"wrote {path}")
    if not written:
        typer.echo("every event's schema is committed already")


@schemas_app.command("asyncapi")
@fails_cleanly
def schemas_asyncapi(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the committed document is out of date.")
    ] = False,
    output: Annotated[Path | None, typer.Option(help="Default docs/asyncapi.yaml.")] = None,
) -> None:
    """The event interface as AsyncAPI 3, from the contracts and infra/topics.yaml."""
    from golive_platform.topics import load_catalogue  # noqa: PLC0415

    from golive_cli.asyncapi import document, render  # noqa: PLC0415

    config = PlatformConfig()
    path = output or config.root / "docs" / "asyncapi.yaml"
    text = render(document(load_catalogue(config.topics_file)))
    if check:
        if not path.exists() or path.read_text() != text:
            raise PlatformError(f"{path} is out of date: run `golive schemas asyncapi`")
        typer.echo(f"{path} is up to date")
        return
    path.write_text(text)
    typer.echo(f"wrote {path}")


@deploy_app.command("render")
@fails_cleanly
def deploy_render(
    version: Annotated[str, typer.Option(help="The version; also the images' tag.")],
    registry: Annotated[str, typer.Option(help="Image registry, e.g. ghcr.io/acme.")],
    out: Annotated[Path, typer.Option(help="Directory for the rendered manifests.")],
    previous: Annotated[
        str | None,
        typer.Option(help="Version now live: rendered as blue, the new one green at 0%."),
    ] = None,
    kafka_security_protocol: Annotated[
        str, typer.Option(help="How the services reach Kafka: SASL_SSL, or SASL_PLAINTEXT.")
    ] = deploy.KAFKA_SECURITY_PROTOCOL,
    kafka_sasl_mechanism: Annotated[
        str, typer.Option(help="SCRAM-SHA-512, SCRAM-SHA-256, or PLAIN (Confluent Cloud).")
    ] = deploy.KAFKA_SASL_MECHANISM,
    auth_issuer: Annotated[
        str, typer.Option(help="The `iss` of the API tokens: your identity provider.")
    ] = deploy.AUTH_ISSUER,
    auth_jwks_url: Annotated[
        str, typer.Option(help="Where that provider publishes its keys (its jwks_uri).")
    ] = deploy.AUTH_JWKS_URL,
    environment: Annotated[
        str, typer.Option(help="Datadog's env tag (DD_ENV) of every metric and trace.")
    ] = "production",
) -> None:
    """Render infra/k8s for one version."""
    from golive_cli.deploy import DeployError  # noqa: PLC0415
    from golive_cli.deploy import render as render_manifests  # noqa: PLC0415

    source = PlatformConfig().root / "infra" / "k8s"
    try:
        written = render_manifests(
            source,
            out,
            version=version,
            registry=registry,
            previous=previous,
            kafka_security=(kafka_security_protocol, kafka_sasl_mechanism),
            auth_issuer=auth_issuer,
            auth_jwks_url=auth_jwks_url,
            environment=environment,
        )
    except DeployError as exc:
        raise PlatformError(str(exc)) from exc
    typer.echo(f"rendered {len(written)} manifests for {version} into {out}")


@deploy_app.command("rollout")
@fails_cleanly
def deploy_rollout(
    manifests: Annotated[Path, typer.Option(help="Rendered manifests (golive deploy render).")],
    version: Annotated[str, typer.Option(help="The version going live.")],
    previous: Annotated[str, typer.Option(help="The version live now (blue).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the kubectl calls only.")
    ] = False,
    fail_at: Annotated[
        str | None, typer.Option(help="Dry run: rehearse this step failing (its title).")
    ] = None,
) -> None:
    """Blue/green: green at 0%, checked, then 100%; any failed check rolls everything back."""
    from golive_cli.deploy import DeployError, kubectl_runner, rollout_plan, run_rollout  # noqa: PLC0415

    if fail_at is not None and not dry_run:
        raise PlatformError("--fail-at rehearses a failure: only with --dry-run")
    try:
        steps = rollout_plan(manifests, version, previous)
    except DeployError as exc:
        raise PlatformError(str(exc)) from exc
    if fail_at is not None and fail_at not in {s.what for s in steps}:
        raise PlatformError(f"no step named {fail_at!r}; steps: {', '.join(s.what for s in steps)}")
    run = None if dry_run else kubectl_runner
    raise typer.Exit(run_rollout(steps, typer.echo, run=run, fail_at=fail_at))


@app.command()
@fails_cleanly
def demo(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every order to end.")] = 30.0,
) -> None:
    """Place a mix of orders against the running system; print each final state and timeline."""
    import httpx  # noqa: PLC0415
    from golive_contracts.scopes import Scope  # noqa: PLC0415
    from golive_platform import process, viewer  # noqa: PLC0415

    from golive_cli.demo import run_demo  # noqa: PLC0415
    from golive_cli.system import api_headers  # noqa: PLC0415

    config = PlatformConfig()
    order_url, audit_url = (
        f"http://{config.host}:{config.order_port}",
        f"http://{config.host}:{config.audit_port}",
    )
    scopes = (Scope.PLACE_ORDERS, Scope.READ_ORDERS, Scope.READ_AUDIT)
    headers = api_headers(config, *scopes, subject="golive-demo")
    zipkin = process.read(config.run_dir, viewer.ZipkinNode.name)
    traces_url = viewer.traces_url(config) if zipkin and zipkin.alive else None
    try:
        code = run_demo(order_url, audit_url, headers, timeout, typer.echo, traces_url)
    except httpx.HTTPError as exc:
        raise PlatformError(
            f"the system does not answer at {order_url} ({exc}): `make up` starts it"
        ) from exc
    raise typer.Exit(code)


@app.command("rebuild")
@fails_cleanly
def rebuild_command(
    service: Annotated[str, typer.Argument(help="order, payment or audit.")],
    postgres: WithPostgres = False,
    database_url: Annotated[
        str | None, typer.Option(help="The read model's database (default: what `make run` uses).")
    ] = None,
) -> None:
    """Rebuild a service's read model from offset 0 into fresh tables, then swap them in.

    The live tables keep serving while the new ones fill; the swap is one transaction.
    """
    import rich.progress  # noqa: PLC0415
    from confluent_kafka import KafkaException  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from golive_cli import operations  # noqa: PLC0415

    settings, model = operations.service_settings(
        service, PlatformConfig(), postgres=postgres, database_url=database_url
    )
    with rich.progress.Progress(
        *rich.progress.Progress.get_default_columns(),
        rich.progress.MofNCompleteColumn(),
        rich.progress.TextColumn("records"),
        transient=False,
    ) as bar:
        task = bar.add_task(f"rebuilding {service}", total=None)

        def show(progress: Progress) -> None:
            bar.update(task, total=progress.total, completed=progress.done)

        try:
            done = operations.rebuild_service(settings, model, show)
        except (KafkaException, SQLAlchemyError, TimeoutError) as exc:
            raise PlatformError(
                f"rebuild of {service} failed, the live tables are untouched: {exc}"
            ) from exc
    typer.echo(
        f"rebuilt {service}: {done.records:,} records in {done.seconds:.1f} s; "
        f"swapped in {', '.join(done.tables)}"
    )


@dlq_app.command("redrive")
@fails_cleanly
def dlq_redrive(
    topic: Annotated[str, typer.Option(help="The topic the dead letters came from, e.g. orders.")],
    group: Annotated[str, typer.Option(help="The consumer group whose dead letters to redrive.")],
    bootstrap: Annotated[
        str | None, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count them, send nothing.")] = False,
) -> None:
    """Re-deliver a group's dead letters to that group only (each once), e.g. after a fix."""
    from golive_cli import operations  # noqa: PLC0415
    from golive_cli.system import Cluster  # noqa: PLC0415

    found = operations.redrive(Cluster.chosen(bootstrap).connection, topic, group, dry_run=dry_run)
    verb = "would redrive" if dry_run else "redrove"
    typer.echo(f"{verb} {found.records} record(s) from {found.dlq} to group {group}")
    for source, count in sorted(found.by_source.items()):
        typer.echo(f"  {source}: {count}")


Service = Annotated[str, typer.Argument(help="The routed group, e.g. payment.")]
FlagsFile = Annotated[
    Path | None,
    typer.Option("--flags", help="The flags the router reads (default: make run's copy)."),
]
Bootstrap = Annotated[str | None, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka.")]
Suffix = Annotated[
    str | None,
    typer.Option(
        help="An environment of its own on a shared cluster: topics <t>.<suffix>, groups "
        "<suffix>.<g> (as golive regress and the tests make them)."
    ),
]
By = Annotated[
    str | None,
    typer.Option(help="Who takes the action, as recorded (default: GOLIVE_ACTOR, or login@host)."),
]
Reason = Annotated[str | None, typer.Option(help="Why, as recorded with the action.")]


@dataclass(frozen=True)
class _Taking:
    """Where a release action is written and recorded, and by whom."""

    flags: Path | None
    bootstrap: str | None
    suffix: str | None
    by: str | None
    reason: str | None


def _released(
    service: str,
    action: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    taking: _Taking,
) -> None:
    """Record the action on the releases topic, then rewrite the route as `change` says, and
    say what it was and what it is. Not recorded, not taken."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from golive_eventing.flags import read, write  # noqa: PLC0415

    from golive_cli import release  # noqa: PLC0415

    path = taking.flags or PlatformConfig().ensure_flags()
    try:
        document = read(path)
        before = release.route(document, service)
        changed = change(document)
        after = release.route(changed, service)
    except (release.ReleaseError, KeyError) as exc:
        raise PlatformError(str(exc).strip("'\"")) from None
    event = release.recorded(
        action,
        before,
        after,
        by=taking.by or release.actor(),
        reason=taking.reason,
        where=str(path),
        now=datetime.now(UTC),
    )
    at = _record(event, taking.bootstrap, taking.suffix)
    write(path, changed)
    typer.echo(
        f"was  {before}\nnow  {after}\n({path}; the router reads it within a second; "
        f"recorded as {at})"
    )


def _record(event: ReleaseRouteChanged, bootstrap: str | None, suffix: str | None) -> str:
    """Publish a release's record under the release login; where it landed."""
    from golive_eventing import clients  # noqa: PLC0415
    from golive_eventing.clients import Connection  # noqa: PLC0415
    from golive_eventing.producer import DeliveryFailedError, EventProducer  # noqa: PLC0415
    from golive_eventing.serde import (  # noqa: PLC0415
        EventSerde,
        RegistryUnavailableError,
        SchemaNotRegisteredError,
    )
    from golive_eventing.settings import KafkaSettings  # noqa: PLC0415

    from golive_cli.release import RELEASE  # noqa: PLC0415
    from golive_cli.system import Cluster  # noqa: PLC0415

    login = Cluster.chosen(bootstrap).service(RELEASE)
    names = _names(suffix)
    settings = KafkaSettings.exactly(
        **{name: getattr(login, name) for name in Connection.model_fields},
        **names.settings(),
        kafka_group_prefix=names.group_prefix,
    )
    producer = EventProducer(
        settings, EventSerde(clients.registry(login), dict(names.topics)), client_id=RELEASE
    )
    try:
        done = producer.publish_sync(event, key=event.group)
    except (DeliveryFailedError, RegistryUnavailableError, SchemaNotRegisteredError) as exc:
        raise PlatformError(
            f"not released: the action could not be recorded on {settings.releases_topic} "
            f"({exc}); the route is unchanged"
        ) from None
    finally:
        producer.close()
    return f"{done.topic}[{done.partition}]@{done.offset}"


@release_app.command("shadow")
@fails_cleanly
def release_shadow(
    service: Service,
    flags: FlagsFile = None,
    bootstrap: Bootstrap = None,
    suffix: Suffix = None,
    by: By = None,
    reason: Reason = None,
) -> None:
    """The candidate slot gets a shadow copy of every input; the live slot decides them all."""
    from golive_cli import release  # noqa: PLC0415

    taking = _Taking(flags, bootstrap, suffix, by, reason)
    _released(service, "shadow", lambda d: release.shadow(d, service), taking)


@release_app.command("canary")
@fails_cleanly
def release_canary(
    service: Service,
    percent: Annotated[int, typer.Option(help="The share of new keys the candidate decides.")],
    flags: FlagsFile = None,
    bootstrap: Bootstrap = None,
    suffix: Suffix = None,
    by: By = None,
    reason: Reason = None,
) -> None:
    """A share of new keys (by order id) to the candidate, the rest to the live slot."""
    from golive_cli import release  # noqa: PLC0415

    taking = _Taking(flags, bootstrap, suffix, by, reason)
    _released(service, "canary", lambda d: release.canary(d, service, percent), taking)


@release_app.command("switch")
@fails_cleanly
def release_switch(
    service: Service,
    flags: FlagsFile = None,
    bootstrap: Bootstrap = None,
    suffix: Suffix = None,
    by: By = None,
    reason: Reason = None,
) -> None:
    """Every new key to the candidate (blue/green): rollback returns them to the live slot."""
    from golive_cli import release  # noqa: PLC0415

    taking = _Taking(flags, bootstrap, suffix, by, reason)
    _released(service, "switch", lambda d: release.switch(d, service), taking)


@release_app.command("rollback")
@fails_cleanly
def release_rollback(
    service: Service,
    flags: FlagsFile = None,
    bootstrap: Bootstrap = None,
    suffix: Suffix = None,
    by: By = None,
    reason: Reason = None,
) -> None:
    """Every new key back to the live slot at once; keys the candidate has keep their slot."""
    from golive_cli import release  # noqa: PLC0415

    taking = _Taking(flags, bootstrap, suffix, by, reason)
    _released(service, "rollback", lambda d: release.rollback(d, service), taking)


def _route(service: str, flags: Path | None) -> Route:
    """The routed group's route in the flags file (make run's copy by default)."""
    from golive_eventing.flags import read  # noqa: PLC0415

    from golive_cli import release  # noqa: PLC0415

    try:
        return release.route(read(flags or PlatformConfig().ensure_flags()), service)
    except (release.ReleaseError, KeyError) as exc:
        raise PlatformError(str(exc).strip("'\"")) from None


def _names(suffix: str | None) -> Names:
    from golive_contracts.topology import Names  # noqa: PLC0415

    return Names.suffixed(suffix) if suffix else Names()


def _comparison(
    service: str, flags: Path | None, bootstrap: str | None, suffix: str | None
) -> Comparison:
    """The candidate slot's shadow decisions (its version's only, in the shadow window) beside
    the live ones, and the shadow copies it was handed and never decided."""
    import time  # noqa: PLC0415

    from golive_contracts import topology  # noqa: PLC0415
    from golive_contracts.events import ReleaseRouteChanged  # noqa: PLC0415
    from golive_eventing import clients  # noqa: PLC0415
    from golive_eventing.serde import EventSerde  # noqa: PLC0415

    from golive_cli import release, shadow  # noqa: PLC0415
    from golive_cli.system import Cluster  # noqa: PLC0415

    now = _route(service, flags)
    names = _names(suffix)
    slot = topology.slot_group(service, now.candidate)
    declared = release.candidate(service, now.candidate)
    connection = Cluster.chosen(bootstrap).connection
    serde = EventSerde(clients.registry(connection), dict(names.topics))
    releases = [
        (r.event, r.timestamp)
        for r in shadow.read(connection, serde, names.topic(topology.RELEASES))
        if isinstance(r.event, ReleaseRouteChanged)
    ]
    window = shadow.shadow_window(releases, service)
    decided = [
        r
        for topic in names.shadow_topics(slot)
        for r in shadow.read(connection, serde, topic, window.start)
        if window.holds(r.timestamp) and r.event.envelope.producer_version == declared.version
    ]
    in_flight = int(time.time() * 1000) - shadow.IN_FLIGHT_MS
    handed = {
        r.key
        for topic in names.inputs(slot)
        for r in shadow.read(connection, serde, topic, window.start)
        if r.route == topology.SHADOW and window.holds(r.timestamp) and r.timestamp < in_flight
    }
    since = min((r.timestamp for r in decided), default=window.start) - shadow.LIVE_LEAD_MS
    live = (
        [
            (r.key, r.event)
            for topic in slot.writes
            for r in shadow.read(connection, serde, names.topic(topic), max(since, 0))
        ]
        if decided
        else []
    )
    return shadow.compare(live, [(r.key, r.event) for r in decided], declared.intended, handed)


@release_app.command("compare")
@fails_cleanly
def release_compare(
    service: Service, flags: FlagsFile = None, bootstrap: Bootstrap = None, suffix: Suffix = None
) -> None:
    """The candidate's shadow decisions beside the live ones, order by order: exit 1 on any
    difference its version does not declare it intends."""
    found = _comparison(service, flags, bootstrap, suffix)
    typer.echo(found.text())
    if not found.ok:
        raise typer.Exit(1)


@release_app.command("promote")
@fails_cleanly
def release_promote(
    service: Service,
    flags: FlagsFile = None,
    bootstrap: Bootstrap = None,
    suffix: Suffix = None,
    by: By = None,
    reason: Reason = None,
) -> None:
    """The candidate becomes the live slot; the other slot is free for the next version.
    Refused while its shadow decisions differ from the live ones beyond what it intends."""
    from golive_cli import release  # noqa: PLC0415

    found = _comparison(service, flags, bootstrap, suffix)
    if not found.ok:
        typer.echo(found.text(), err=True)
        raise PlatformError(
            f"promotion refused: {len(found.refused)} order(s) handed to the candidate in shadow "
            "were decided otherwise than the live version beyond what it intends, or not at "
            f"all: {', '.join(found.refused)}"
        )
    taking = _Taking(flags, bootstrap, suffix, by, reason)
    _released(service, "promote", lambda d: release.promote(d, service), taking)


@release_app.command("status")
@fails_cleanly
def release_status(
    service: Service, flags: FlagsFile = None, bootstrap: Bootstrap = None, suffix: Suffix = None
) -> None:
    """The route, what the router and each slot have yet to read, and the shadow comparison."""
    from golive_contracts import topology  # noqa: PLC0415

    from golive_cli import operations  # noqa: PLC0415
    from golive_cli.system import Cluster  # noqa: PLC0415

    now = _route(service, flags)
    typer.echo(str(now))
    connection = Cluster.chosen(bootstrap).connection
    names = _names(suffix)
    router = topology.router_of(service)
    behind = operations.unread(connection, names.group_id(router.name), names.inputs(router))
    typer.echo(f"  {router.name:<16} {behind:>8} unread")
    for slot in topology.SLOTS:
        group = topology.slot_group(service, slot)
        role = "live" if slot == now.live else "candidate"
        behind = operations.unread(connection, names.group_id(group.name), names.inputs(group))
        typer.echo(f"  {group.name:<16} {behind:>8} unread   ({role})")
    compared = _comparison(service, flags, bootstrap, suffix)
    if compared.orders or compared.missing_shadow:
        typer.echo("shadow: " + compared.text(limit=0).splitlines()[0])


def main() -> None:
    sys.exit(app())
