"""`golive flags check`: a flags file against flagd's own JSON schema and Golive's declarations.

flagd publishes its schema (https://flagd.dev/schema/v0/flags.json) in the flagd-schemas
repository, which the Go module proxy serves as a versioned, checksummed archive: it is fetched
from there once, pinned by version and SHA-256, into the cache outside git (like the platform's
Java artifacts). The declarations' check (golive_eventing.flags.problems) is the one the services
run at start; this adds flagd's schema (targeting rules included) and insists every declared
flag is in the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from golive_eventing.flags import FlagsFileError, line_of, problems
from referencing import Registry, Resource

FLAGD_SCHEMAS_VERSION = "v0.2.13"
FLAGD_SCHEMAS_SHA256 = "82e342034679801d57a06108dd68c3fb78d9311999312a4e6fec69451a166a2f"
FLAGD_SCHEMAS_URL = (
    f"https://proxy.golang.org/github.com/open-feature/flagd-schemas/@v/{FLAGD_SCHEMAS_VERSION}.zip"
)
SCHEMA_FILES = ("flags.json", "targeting.json")


class SchemaFetchError(RuntimeError):
    """flagd's schema could not be fetched or is not what was pinned."""


@dataclass(frozen=True)
class FlagdSchema:
    flags: dict[str, Any]
    targeting: dict[str, Any]

    def validator(self) -> jsonschema.Draft7Validator:
        registry: Registry[Any] = Registry().with_resources(
            [(s["$id"], Resource.from_contents(s)) for s in (self.flags, self.targeting)]
        )
        # Entered by reference, so flags.json's relative "./targeting.json" resolves against
        # its $id (a validator given the schema itself starts with no base URI).
        return jsonschema.Draft7Validator({"$ref": self.flags["$id"]}, registry=registry)


def flagd_schema(cache_dir: Path) -> FlagdSchema:
    """flagd's schema, from the cache or fetched into it once."""
    home = cache_dir / f"flagd-schemas-{FLAGD_SCHEMAS_VERSION}"
    if not all((home / name).is_file() for name in SCHEMA_FILES):
        _fetch(home)
    flags, targeting = (json.loads((home / n).read_text(encoding="utf-8")) for n in SCHEMA_FILES)
    return FlagdSchema(flags, targeting)


def _fetch(home: Path) -> None:
    try:
        answer = httpx.get(FLAGD_SCHEMAS_URL, timeout=30, follow_redirects=True)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise SchemaFetchError(
            f"cannot fetch flagd's schema from {FLAGD_SCHEMAS_URL}: {exc}"
        ) from exc
    digest = hashlib.sha256(answer.content).hexdigest()
    if digest != FLAGD_SCHEMAS_SHA256:
        raise SchemaFetchError(
            f"{FLAGD_SCHEMAS_URL} has SHA-256 {digest}, not the pinned {FLAGD_SCHEMAS_SHA256}"
        )
    prefix = f"github.com/open-feature/flagd-schemas@{FLAGD_SCHEMAS_VERSION}/json/"
    home.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        for name in SCHEMA_FILES:
            (home / name).write_bytes(archive.read(prefix + name))


def check_file(path: Path, schema: FlagdSchema) -> None:
    """Raise FlagsFileError naming the first thing wrong: flagd's schema first, then the
    declarations (every declared flag there, none undeclared, the right variant types)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagsFileError(path, 1, f"cannot read it: {exc}") from exc
    found = problems(text, complete=True)
    if not found:
        errors = list(schema.validator().iter_errors(json.loads(text)))
        worst = _deepest(jsonschema.exceptions.best_match(errors))
        if worst is not None:
            where = line_of(text, [str(p) for p in worst.absolute_path])
            found = [(where, f"flagd's schema: {worst.message}")] * len(errors)
    if found:
        line, message = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise FlagsFileError(path, line, message + more)


def _deepest(error: jsonschema.ValidationError | None) -> jsonschema.ValidationError | None:
    """Into an anyOf/oneOf's reasons: the one most of its branches share, deepest first. A flag
    is one of four typed flags; a bad targeting rule fails in all four, a variant's type in only
    the three it is not, so "fractional is not an array" comes before "true is not a number"."""
    if error is None or not error.context:
        return error
    leaves = list(_leaves(error))
    count: dict[tuple[str, str], int] = {}
    for leaf in leaves:
        at = (leaf.json_path, leaf.message)
        count[at] = count.get(at, 0) + 1
    return max(leaves, key=lambda e: (count[(e.json_path, e.message)], len(e.absolute_path)))


def _leaves(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    if not error.context:
        yield error
    for reason in error.context:
        yield from _leaves(reason)
