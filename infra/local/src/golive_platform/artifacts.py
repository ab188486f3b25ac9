"""Fetching the Java artifacts with Maven into the cache outside git, once."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError

# Maven names the coordinates it could not resolve in a few phrasings across versions.
_UNRESOLVED = [
    re.compile(r"Could not find artifact (\S+)"),
    re.compile(r"(\S+:\S+:\S+:\S+) was not found in"),
    re.compile(r"Failure to find (\S+)"),
    re.compile(r"Could not transfer artifact (\S+)"),
    re.compile(r"Failed to collect dependencies at (\S+)"),
]


@dataclass(frozen=True)
class Artifacts:
    kafka_libs: Path
    registry_home: Path

    @property
    def registry_jar(self) -> Path:
        return self.registry_home / "quarkus-run.jar"

    @property
    def registry_app_jar(self) -> Path:
        return next((self.registry_home / "app").glob("apicurio-registry-app-*.jar"))


def locate(config: PlatformConfig) -> Artifacts:
    return Artifacts(
        kafka_libs=config.cache_dir / f"kafka-{config.kafka_version}" / "libs",
        registry_home=config.cache_dir / f"apicurio-registry-{config.apicurio_version}",
    )


def _complete(artifacts: Artifacts, version: str) -> bool:
    return (artifacts.kafka_libs / f"kafka_2.13-{version}.jar").is_file() and (
        artifacts.registry_jar.is_file()
    )


def unresolved_artifact(maven_output: str) -> str | None:
    """The coordinates Maven failed to resolve, if its output names one."""
    for pattern in _UNRESOLVED:
        if match := pattern.search(maven_output):
            return match.group(1).rstrip(":,")
    return None


def fetch(config: PlatformConfig, *, echo: bool = True) -> Artifacts:
    """Resolve Kafka's jars and the Apicurio archive through infra/local/pom.xml (cached)."""
    artifacts = locate(config)
    if _complete(artifacts, config.kafka_version):
        return artifacts
    if echo:
        print(
            f"fetching Kafka {config.kafka_version} and Apicurio Registry "
            f"{config.apicurio_version} from Maven Central into {config.cache_dir} (once)"
        )
    maven(config, "Kafka and the registry", lambda: _complete(artifacts, config.kafka_version))
    return artifacts


def maven(
    config: PlatformConfig, what: str, done: Callable[[], bool], profiles: Sequence[str] = ()
) -> None:
    """Run infra/local/pom.xml's generate-resources (with `profiles`) at the versions of
    `config`; a PlatformError naming the artifact Maven could not resolve, or its exit, unless
    `done()` holds afterwards."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PlatformError(f"Maven (mvn) not found on PATH: it fetches {what}")
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(config.pom),
        *(arg for profile in profiles for arg in ("-P", profile)),
        "generate-resources",
        f"-Dgolive.cache={config.cache_dir}",
        f"-Dkafka.version={config.kafka_version}",
        f"-Dapicurio.version={config.apicurio_version}",
        f"-Dzipkin.version={config.zipkin_version}",
    ]
    finished = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if finished.returncode != 0 or not done():
        output = finished.stdout + finished.stderr
        coordinates = unresolved_artifact(output)
        if coordinates:
            raise PlatformError(f"cannot resolve artifact {coordinates}", detail=output[-2000:])
        raise PlatformError(f"maven failed to fetch {what} (exit {finished.returncode})", output)
