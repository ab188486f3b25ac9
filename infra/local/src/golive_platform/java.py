"""Finding a Java runtime new enough for each component, with a one-line reason when there is none."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from golive_platform.errors import PlatformError

# A class file's major version is the Java release it targets, plus 44.
_CLASS_MAJOR_OFFSET = 44
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class Java:
    executable: Path
    version: int


def java_version(executable: Path) -> int:
    """The feature release of a java executable (8 for 1.8, 17 for 17.0.15)."""
    try:
        out = subprocess.run(
            [str(executable), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError as exc:
        raise PlatformError(f"cannot run {executable}: {exc.strerror}") from exc
    match = _VERSION.search(out)
    if not match:
        raise PlatformError(f"cannot tell the version of {executable}: {out.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _candidates(explicit: Path | None) -> list[Path]:
    if explicit is not None:
        # An explicit choice is the only one: never silently run something else.
        return [explicit / "bin" / "java"]
    found: list[Path] = []
    if home := os.environ.get("JAVA_HOME"):
        found.append(Path(home) / "bin" / "java")
    if on_path := shutil.which("java"):
        found.append(Path(on_path).resolve())
    patterns = [
        "/usr/lib/jvm/*/bin/java",
        "/Library/Java/JavaVirtualMachines/*/Contents/Home/bin/java",
    ]
    for pattern in patterns:
        found.extend(Path(p).resolve() for p in sorted(glob.glob(pattern)))
    return list(dict.fromkeys(found))


def find_java(minimum: int, explicit: Path | None, needed_by: str) -> Java:
    """The first Java runtime of at least `minimum`, in order GOLIVE_JAVA_HOME, JAVA_HOME, PATH, known dirs."""
    seen: list[str] = []
    for candidate in _candidates(explicit):
        if not candidate.is_file():
            continue
        version = java_version(candidate)
        if version >= minimum:
            return Java(candidate, version)
        seen.append(f"Java {version} at {candidate}")
    where = "GOLIVE_JAVA_HOME" if explicit else "JAVA_HOME, PATH or /usr/lib/jvm"
    if not seen:
        raise PlatformError(f"Java not found in {where}: {needed_by} needs Java {minimum} or newer")
    raise PlatformError(
        f"{needed_by} needs Java {minimum} or newer; found only {', '.join(seen)}"
        f" (set GOLIVE_JAVA_HOME to a JDK {minimum}+)"
    )


def required_java(jar: Path) -> int:
    """The Java release a jar was compiled for, read from its first class file."""
    with zipfile.ZipFile(jar) as archive:
        for name in archive.namelist():
            if name.endswith(".class") and not name.startswith("META-INF/"):
                header = archive.read(name)[:8]
                return int.from_bytes(header[6:8], "big") - _CLASS_MAJOR_OFFSET
    raise PlatformError(f"{jar} holds no class files")
