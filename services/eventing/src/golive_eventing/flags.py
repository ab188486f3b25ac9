"""Feature flags: OpenFeature, with flagd's own evaluator reading the flags file in process.

No flag server is needed: the provider (FileProvider) evaluates flagd's format (targeting,
`fractional` splits) with flagd-core in the service's own process and polls the file, so a
change takes effect without a restart. Where a flagd server runs, flagd's RPC provider takes
FileProvider's place and the same file is the server's source; the flags and their rules do not
change.

What happens when the flags cannot be read, documented in docs/flags.md and tested:
- No FLAGS_FILE set, or the file is not there at start: every flag takes its declared fallback
  (golive_contracts.flags), and the log says so; a file that appears later is read.
- A flags file that is malformed at start: the service refuses to start, naming the file and the
  line that is wrong (exit 78, golive_eventing.app.configured).
- A file rewritten badly, or removed, while running: the flags read before stay in force, and
  the log names the line that is wrong.
- A flag missing from the file, or of the wrong type: its fallback, said once in the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from golive_contracts.flags import FLAGS, Flag, FlagValue
from openfeature import api
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent, ProviderEventDetails
from openfeature.exception import ErrorCode, OpenFeatureError, ProviderNotReadyError
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails
from openfeature.provider import AbstractProvider
from openfeature.provider.metadata import Metadata

from golive_eventing.exits import ConfigError

log = logging.getLogger(__name__)

POLL_MS = 500  # how often the file is looked at for a change
STATES = ("ENABLED", "DISABLED")
NOT_FLAGS = 'a flags file is a JSON object with a "flags" object (flagd\'s format)'


class FlagsFileError(ConfigError):
    """A flags file that cannot be used: where, and what is wrong."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


# -- checking a flags file (pure) ------------------------------------------------------------


def problems(
    text: str, declared: Sequence[Flag] = FLAGS, *, complete: bool = False
) -> list[tuple[int, str]]:
    """What is wrong with a flags file's text, as (line, message), first problem first: JSON that
    does not parse, what flagd refuses, a flag nobody declared (a typo would silently leave the
    declared one at its fallback), a declared flag with variants of another type. `complete`:
    every declared flag must be there too (the check CI runs; a service takes a missing flag's
    fallback)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return [(exc.lineno, f"not JSON: {exc.msg}")]
    flags = _flags_of(document)
    if flags is None:
        return [(1, NOT_FLAGS)]
    found: list[tuple[int, str]] = []
    kinds = {f.key: f for f in declared}
    for key, body in flags.items():
        at = ("flags", key)
        if key not in kinds:
            known = ", ".join(kinds)
            found.append((line_of(text, at), f"flag {key!r} is declared nowhere (known: {known})"))
            continue
        found += [(line_of(text, at + sub), why) for sub, why in _flag_problems(kinds[key], body)]
    if complete:
        missing = [k for k in kinds if k not in flags]
        found += [(line_of(text, ("flags",)), f"flag {k!r} is missing") for k in missing]
    if not found:
        found += _flagd_refuses(text, flags)
    return sorted(found)


def _flags_of(document: object) -> dict[str, Any] | None:
    """The "flags" object of a parsed flags file; None: it is not a flags file (flagd-core
    would take it as one with no flags at all, every flag at its fallback)."""
    if isinstance(document, dict) and isinstance(flags := document.get("flags"), dict):
        return flags
    return None


def _flagd_refuses(text: str, flags: dict[str, Any]) -> list[tuple[int, str]]:
    """What flagd's own parser refuses, at the flag it refuses (tried one flag at a time)."""
    try:
        FlagdCore().set_flags_and_get_changed_keys(text)
    except Exception as whole:  # flagd-core's refusal, whatever form it takes
        for key, body in flags.items():
            try:
                FlagdCore().set_flags_and_get_changed_keys(json.dumps({"flags": {key: body}}))
            except Exception as one:
                return [
                    (line_of(text, ("flags", key)), f"flag {key!r}: flagd refuses it: {_why(one)}")
                ]
        return [(line_of(text, ("flags",)), f"flagd refuses it: {_why(whole)}")]
    return []


def _why(exc: BaseException) -> str:
    """An exception's message, or its cause's (flagd-core wraps some in an empty ParseError)."""
    while not str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


def _flag_problems(flag: Flag, body: object) -> Iterable[tuple[tuple[str, ...], str]]:
    name = flag.key
    if not isinstance(body, dict):
        yield (), f"flag {name!r} is not an object"
        return
    if body.get("state") not in STATES:
        yield ("state",), f"flag {name!r}: state must be one of {', '.join(STATES)}"
    variants = body.get("variants")
    if not isinstance(variants, dict) or not variants:
        yield ("variants",), f"flag {name!r}: variants must be a non-empty object"
        return
    for variant, value in variants.items():
        if not _is(value, flag.kind):
            yield (
                ("variants", variant),
                f"flag {name!r}: variant {variant!r} is {json.dumps(value)}, "
                f"not a {flag.kind.__name__}",
            )
        elif flag.values and value not in flag.values:
            yield (
                ("variants", variant),
                f"flag {name!r}: variant {variant!r} is {json.dumps(value)}, "
                f"not one of {', '.join(flag.values)}",
            )
    default = body.get("defaultVariant")
    if default is not None and default not in variants:
        yield (
            ("defaultVariant",),
            f"flag {name!r}: defaultVariant {default!r} is not one of its variants "
            f"({', '.join(variants)})",
        )


def _is(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return type(value) is kind


def line_of(text: str, path: Sequence[str]) -> int:
    """The line of the key at the end of `path` (object keys), or of the nearest enclosing key
    found. Read with positions by YAML, which parses JSON; JSON it cannot read (tab indents):
    the key's first mention."""
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        match = re.search(rf'"{re.escape(path[-1])}"\s*:', text) if path else None
        return text.count("\n", 0, match.start()) + 1 if match else 1
    line = 1
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            break
        pair = next(((k, v) for k, v in node.value if k.value == key), None)
        if pair is None:
            break
        line, node = pair[0].start_mark.line + 1, pair[1]
    return line


def check(path: Path, declared: Sequence[Flag] = FLAGS, *, complete: bool = False) -> None:
    """Raise FlagsFileError naming the first thing wrong with the file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagsFileError(path, 1, f"cannot read it: {exc}") from exc
    wrong = first_problem(path, text, declared, complete=complete)
    if wrong is not None:
        raise wrong


def first_problem(
    path: Path, text: str, declared: Sequence[Flag] = FLAGS, *, complete: bool = False
) -> FlagsFileError | None:
    """The first thing wrong with `text`, the content of `path`, and how many more; None: it
    is as declared."""
    found = problems(text, declared, complete=complete)
    if not found:
        return None
    line, message = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return FlagsFileError(path, line, message + more)


# -- evaluating flags --------------------------------------------------------------------------


class Flags:
    """One service's flags, from the file at `path` (None: every flag its fallback)."""

    def __init__(self, path: Path | None, *, poll_ms: int = POLL_MS) -> None:
        self.path = path
        self._said: dict[str, str] = {}  # flag -> why it fell back, said once until it reads
        self._failing: str | None = None
        self._lock = threading.Lock()
        # The SDK runs event handlers later, on a thread pool of its own: one queued before
        # close() may run after it. Each runs holding this, and does nothing once closed.
        self._handling = threading.Lock()
        self._closed = False
        # OpenFeature's registry is process-wide: a domain of its own per instance, so two
        # services in one process (the tests) each read their own file.
        self._domain = f"golive-flags-{uuid.uuid4()}"
        self._provider: FileProvider | None = None
        if path is None:
            log.warning("no FLAGS_FILE: every flag takes its fallback (docs/flags.md)")
            return
        if path.exists():
            check(path)  # malformed: refuse to start, with the line
        else:
            log.warning(
                "flags file %s not found: every flag takes its fallback until it appears", path
            )
        self._provider = FileProvider(path, poll_ms / 1000)
        self._client = api.get_client(domain=self._domain)
        for event, handler in self._handlers():
            self._client.add_handler(event, handler)
        # No file yet: said above, and the provider reads it when it appears.
        with contextlib.suppress(OpenFeatureError):
            api.set_provider_and_wait(self._provider, domain=self._domain)

    def value(self, flag: Flag, key: str | None = None, **attributes: str) -> FlagValue | None:
        """The flag's value for `key` (the targeting key: an order id for a split by order);
        its fallback when it cannot be read (None for a flag with no safe fallback)."""
        if self._provider is None:
            if flag.fallback is None:
                self._fell_back(flag, "no flags file")
            return flag.fallback
        context = EvaluationContext(targeting_key=key, attributes=dict(attributes))
        details = _evaluate(self._client, flag, context)
        found: FlagValue = details.value
        if details.error_code is None and (not flag.values or found in flag.values):
            self._read(flag)
            return found
        why = f"{details.error_code}: {details.error_message or ''}"
        self._fell_back(flag, why if details.error_code else f"{found!r} is not a value it takes")
        return flag.fallback

    def enabled(self, flag: Flag, key: str | None = None, **attributes: str) -> bool:
        return bool(self.value(flag, key, **attributes))

    def close(self) -> None:
        """Stop watching the file; from now on nothing more is said of it, even by an event
        the SDK queued before."""
        with self._handling:
            self._closed = True
        if self._provider is not None:
            for event, handler in self._handlers():
                self._client.remove_handler(event, handler)
            self._provider.shutdown()
            self._provider = None

    def _handlers(self) -> list[tuple[ProviderEvent, Callable[[EventDetails], None]]]:
        return [
            (ProviderEvent.PROVIDER_ERROR, self._reload_failed),
            (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._reloaded),
        ]

    def _read(self, flag: Flag) -> None:
        """The flag reads again: if it falls back later, that is said again."""
        if flag.key in self._said:
            with self._lock:
                self._said.pop(flag.key, None)

    def _fell_back(self, flag: Flag, why: str) -> None:
        with self._lock:
            if self._said.get(flag.key) == why:
                return
            self._said[flag.key] = why
        if flag.fallback is None:
            log.error(
                "flag %s cannot be read from %s (%s): it has no fallback; %s waits for it",
                flag.key,
                self.path,
                why.strip(": "),
                flag.owner,
            )
            return
        log.warning(
            "flag %s cannot be read from %s (%s): taking its fallback %s",
            flag.key,
            self.path,
            why.strip(": "),
            json.dumps(flag.fallback),
        )

    def _reload_failed(self, details: EventDetails) -> None:
        """The provider could not read the file (it keeps the flags it had): say why, with the
        line, once per distinct reason rather than on every poll."""
        with self._handling:
            if not self._closed:
                self._say_reload_failed(details)

    def _say_reload_failed(self, details: EventDetails) -> None:
        assert self.path is not None
        try:
            check(self.path)
            why = details.message or "unreadable"
        except FlagsFileError as exc:
            why = str(exc)
        with self._lock:
            if why == self._failing:
                return
            self._failing = why
        log.error("flags file not reloaded, the flags read before stay in force: %s", why)

    def _reloaded(self, details: EventDetails) -> None:
        """The provider read the file: what changed, and what flagd took but the declarations
        refuse (such a flag takes its fallback where it is read)."""
        with self._handling:
            if not self._closed:
                self._say_reloaded(details)

    def _say_reloaded(self, details: EventDetails) -> None:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")  # once: it may be rewritten any time
            json.loads(text)
        except (OSError, ValueError):
            # What flagd read parsed; what is there now does not: the file was written again
            # since, and flagd's next read of it says what it finds (_reload_failed). Checking
            # it here would report the new text as read, and hush that report.
            return
        wrong = first_problem(self.path, text)
        problem = None if wrong is None else str(wrong)
        changed_keys = set(details.flags_changed or [])
        with self._lock:
            self._failing = problem
        changed = ", ".join(sorted(changed_keys)) or "none"
        if problem is None:
            log.info("flags read from %s; changed: %s", self.path, changed)
        else:
            log.error("flags read from %s, but not as declared: %s", self.path, problem)


class FileProvider(AbstractProvider):
    """An OpenFeature provider: flagd's evaluator (flagd-core) over a flags file, read again
    whenever the file changes (looked at every `poll_s`). flagd's provider package does the same
    in its in-process file mode, but it imports grpc for its RPC modes whatever the mode: about
    18 MB resident and 0.24 s of import in each service process (docs/flags.md).

    Its events, as flagd's provider emits them: CONFIGURATION_CHANGED with the flags changed
    after each read; ERROR while the file cannot be read or flagd refuses it (the flags read
    before stay in force), again on every look until it is mended; READY when it is read again
    after that. No file, or one flagd refuses, at `initialize`: ProviderNotReadyError, and the
    file is still looked for."""

    def __init__(self, path: Path, poll_s: float) -> None:
        super().__init__()
        self.path = path
        self._poll_s = poll_s
        self._core = FlagdCore()
        self._read_last: tuple[int, int, int] | None = None  # (inode, size, mtime) read last
        self._failing = False
        self._stop = threading.Event()
        self._watching: threading.Thread | None = None

    def get_metadata(self) -> Metadata:
        return Metadata(name="golive flags file (flagd-core)")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self._stop.clear()
        try:
            refused = self._look(at_start=True)
        finally:
            self._watching = threading.Thread(target=self._watch, name="flags-file", daemon=True)
            self._watching.start()
        if refused is not None:
            raise ProviderNotReadyError(f"{self.path}: {_why(refused)}") from refused

    def shutdown(self) -> None:
        self._stop.set()
        if self._watching is not None and self._watching is not threading.current_thread():
            self._watching.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self._look()
            except Exception:  # whatever fails in one look, the file is still watched
                log.exception("flags file %s: looking at it failed", self.path)

    def _look(self, *, at_start: bool = False) -> Exception | None:
        """Read the file if it changed and say so in an event; what refused it, if anything (at
        start, the caller says it: the SDK makes that its ERROR event)."""
        found = self._read_if_changed()
        if isinstance(found, Exception):
            self._failing = True
            if not at_start:
                self.emit_provider_error(
                    ProviderEventDetails(message=_why(found), error_code=ErrorCode.PARSE_ERROR)
                )
            return found
        if found is not None:
            self.emit_provider_configuration_changed(
                ProviderEventDetails(
                    flags_changed=found, metadata=dict(self._core.get_flag_set_metadata())
                )
            )
            if self._failing and not at_start:
                self.emit_provider_ready(ProviderEventDetails(message="flags file read again"))
            self._failing = False
        return None

    def _read_if_changed(self) -> list[str] | Exception | None:
        """The flags the file changed, if it changed since it was read; what stopped it being
        read; None: unchanged. The stat is of the file read (a rename over it between the two
        cannot pair one file's stat with another's text). After a failure the file is read
        again on the next look, whatever its stat says: it may have been caught half written,
        or put back as it was."""
        try:
            with self.path.open("rb") as file:
                stat = os.fstat(file.fileno())
                now = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if now == self._read_last:
                    return None
                document = json.loads(file.read().decode("utf-8"))
            if _flags_of(document) is None:
                raise ValueError(NOT_FLAGS)
            changed = self._core.set_flags_and_get_changed_keys(document)
        except Exception as exc:  # OSError, JSON, and flagd-core's refusals, which have no one type
            self._read_last = None
            return exc
        self._read_last = now
        return changed

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._core.resolve_boolean_value(flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._core.resolve_string_value(flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._core.resolve_integer_value(flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._core.resolve_float_value(flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        found: FlagResolutionDetails[Any] = self._core.resolve_object_value(
            flag_key, default_value, evaluation_context
        )
        return found


def _evaluate(client: Any, flag: Flag, context: EvaluationContext) -> FlagEvaluationDetails[Any]:
    method = {
        bool: client.get_boolean_details,
        str: client.get_string_details,
        int: client.get_integer_details,
        float: client.get_float_details,
    }[flag.kind]
    default = flag.fallback if flag.fallback is not None else flag.kind()
    details: FlagEvaluationDetails[Any] = method(flag.key, default, context)
    return details


# -- writing a flags file ----------------------------------------------------------------------


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def write(path: Path, document: dict[str, Any]) -> None:
    """Replace the file at once (a new file renamed over it): the services polling it never
    read half of it."""
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    staged.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(staged, path)


def with_default(document: dict[str, Any], key: str, variant: str) -> dict[str, Any]:
    """The document with flag `key` answering `variant` to everyone (its targeting removed)."""
    flags = dict(document["flags"])
    if key not in flags:
        raise KeyError(f"no flag {key!r} in the flags file")
    if variant not in flags[key]["variants"]:
        raise ValueError(
            f"flag {key!r} has no variant {variant!r}: {', '.join(flags[key]['variants'])}"
        )
    flags[key] = {k: v for k, v in flags[key].items() if k != "targeting"} | {
        "defaultVariant": variant
    }
    return {**document, "flags": flags}
