"""Feature flags (golive_eventing.flags): what a flags file may say, and what a service does when
the file changes, is missing or is malformed. Files in a temporary directory; no broker."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from golive_contracts.flags import ORDERS_OPEN, Flag
from golive_eventing.flags import (
    FileProvider,
    Flags,
    FlagsFileError,
    problems,
    with_default,
    write,
)
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent, ProviderEventDetails
from openfeature.exception import ProviderNotReadyError

from tests.helpers import eventually

POLL_MS = 50
TIER = Flag("tier", owner="order", fallback="basic", description="A string flag, for the tests.")
ONLY = (ORDERS_OPEN,)  # what VALID holds
DECLARED = (*ONLY, TIER)

VALID = """{
  "flags": {
    "orders-open": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "on"
    }
  }
}
"""


def _with(*lines: str) -> str:
    """VALID with its flag's body replaced by `lines` (line 4 onwards)."""
    body = ",\n".join(f"      {line}" for line in lines)
    return '{\n  "flags": {\n    "orders-open": {\n' + body + "\n    }\n  }\n}\n"


# -- the file, checked (pure) --------------------------------------------------------------------


def test_the_committed_shape_has_no_problems() -> None:
    assert problems(VALID) == []
    assert problems(VALID, ONLY, complete=True) == []


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ('{\n  "flags": {\n    "orders-open": {,\n  }\n}', 3, "not JSON"),
        ("[]", 1, '"flags" object'),
        (
            _with('"state": "ENABLED"', '"variants": {"on": true}', '"defaultVariant": "of"'),
            6,
            "defaultVariant 'of' is not one of its variants (on)",
        ),
        (
            _with('"state": "ON"', '"variants": {"on": true}', '"defaultVariant": "on"'),
            4,
            "state must be one of ENABLED, DISABLED",
        ),
        (
            _with('"state": "ENABLED"', '"variants": {"on": "yes"}', '"defaultVariant": "on"'),
            5,
            "variant 'on' is \"yes\", not a bool",
        ),
        (
            _with('"state": "ENABLED"', '"variants": {}', '"defaultVariant": "on"'),
            5,
            "variants must be a non-empty object",
        ),
        (
            _with('"state": "ENABLED"', '"variants": {"on": true}', '"extra": 1'),
            3,
            "flagd refuses it: Flag.__init__() got an unexpected keyword argument 'extra'",
        ),
    ],
)
def test_a_malformed_file_is_refused_at_the_line_that_is_wrong(
    text: str, line: int, says: str
) -> None:
    found = problems(text)
    assert found, text
    assert found[0][0] == line, found
    assert says in found[0][1], found


def test_a_flag_nobody_declared_is_refused_so_a_typo_cannot_hide() -> None:
    typo = VALID.replace('"orders-open"', '"order-open"')
    assert problems(typo, ONLY) == [
        (3, "flag 'order-open' is declared nowhere (known: orders-open)")
    ]


def test_a_declared_flag_missing_is_refused_only_where_the_file_must_be_complete() -> None:
    assert problems(VALID, DECLARED) == []
    assert problems(VALID, DECLARED, complete=True) == [(2, "flag 'tier' is missing")]


def test_with_default_answers_one_variant_to_everyone() -> None:
    document: dict[str, Any] = json.loads(VALID)
    document["flags"]["orders-open"]["targeting"] = {"if": [True, "off", "on"]}
    changed = with_default(document, "orders-open", "off")
    assert changed["flags"]["orders-open"]["defaultVariant"] == "off"
    assert "targeting" not in changed["flags"]["orders-open"]
    assert document["flags"]["orders-open"]["defaultVariant"] == "on"  # a copy
    with pytest.raises(ValueError, match="no variant 'maybe'"):
        with_default(document, "orders-open", "maybe")


# -- a service's flags, from the file --------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    found = tmp_path / "flags.json"
    found.write_text(VALID)
    return found


def _set(path: Path, variant: str) -> None:
    write(path, with_default(json.loads(path.read_text()), "orders-open", variant))


def test_a_change_takes_effect_without_a_restart(path: Path) -> None:
    flags = Flags(path, poll_ms=POLL_MS)
    try:
        assert flags.enabled(ORDERS_OPEN) is True
        _set(path, "off")
        eventually(lambda: flags.enabled(ORDERS_OPEN) is False, 10, "the flag to turn off")
        _set(path, "on")
        eventually(lambda: flags.enabled(ORDERS_OPEN), 10, "the flag to turn back on")
    finally:
        flags.close()


def test_no_file_at_start_is_every_fallback_said_in_the_log_until_the_file_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "golive_eventing.flags")
    path = tmp_path / "flags.json"
    flags = Flags(path, poll_ms=POLL_MS)
    try:
        assert flags.value(ORDERS_OPEN) is True  # the declared fallback
        assert any("not found" in r.getMessage() for r in caplog.records)
        path.write_text(VALID.replace('"defaultVariant": "on"', '"defaultVariant": "off"'))
        eventually(lambda: flags.enabled(ORDERS_OPEN) is False, 10, "the file to be read")
    finally:
        flags.close()


def test_no_flags_file_configured_is_every_fallback() -> None:
    assert Flags(None).value(ORDERS_OPEN) is True


def test_a_malformed_file_at_start_refuses_the_start_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(VALID.replace('"defaultVariant": "on"', '"defaultVariant": "of"'))
    with pytest.raises(FlagsFileError) as refused:
        Flags(path)
    assert str(refused.value).startswith(f"{path}:6: flag 'orders-open': defaultVariant 'of'")


def test_a_bad_rewrite_while_running_keeps_the_flags_read_before_and_names_the_line(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "golive_eventing.flags")
    flags = Flags(path, poll_ms=POLL_MS)
    try:
        _set(path, "off")
        eventually(lambda: flags.enabled(ORDERS_OPEN) is False, 10, "the flag to turn off")
        # Renamed over it, as `write` does: written in place, a poll can catch the file empty
        # (truncated, not yet written) and rightly report line 1 first (it did, on three workers).
        staged = path.with_name("staged.json")
        staged.write_text('{\n  "flags": {,\n}\n')
        staged.replace(path)

        def said() -> list[str]:
            return [r.getMessage() for r in caplog.records if "not reloaded" in r.getMessage()]

        (message,) = eventually(said, 10, "the bad rewrite to be reported")
        assert f"{path}:2: not JSON" in message
        assert flags.enabled(ORDERS_OPEN) is False  # still what was read before
        path.unlink()
        eventually(lambda: len(said()) == 2, 10, "the removal to be reported")
        assert flags.enabled(ORDERS_OPEN) is False
        _set_fresh(path, "on")
        eventually(lambda: flags.enabled(ORDERS_OPEN), 10, "the good file to be read again")
    finally:
        flags.close()


def _set_fresh(path: Path, variant: str) -> None:
    write(path, with_default(json.loads(VALID), "orders-open", variant))


def test_a_flag_of_the_wrong_type_takes_its_fallback_and_says_so_once(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "golive_eventing.flags")
    flags = Flags(path, poll_ms=POLL_MS)
    try:
        write(
            path,
            {
                "flags": {
                    "orders-open": {
                        "state": "ENABLED",
                        "variants": {"on": 0},
                        "defaultVariant": "on",
                    }
                }
            },
        )

        def fell_back() -> list[str]:
            return [
                r.getMessage() for r in caplog.records if "taking its fallback" in r.getMessage()
            ]

        eventually(lambda: flags.value(ORDERS_OPEN) is True and fell_back(), 10, "the fallback")
        flags.value(ORDERS_OPEN)
        flags.value(ORDERS_OPEN)
        assert len(fell_back()) == 1
        assert "TYPE_MISMATCH" in fell_back()[0]
    finally:
        flags.close()


def test_a_reload_handled_after_the_file_changed_again_does_not_hide_the_bad_rewrite(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """flagd reports a good read; before its event is handled the file is rewritten badly. The
    event must not report the new text as read (nor hush the report of it that follows), as it
    once did in CI. The provider's two events, in that order, stand in for the race."""
    caplog.set_level(logging.INFO, "golive_eventing.flags")
    flags = Flags(path, poll_ms=60_000)  # no poll of its own during the test
    try:
        path.write_text('{\n  "flags": {,\n}\n')
        flags._reloaded(EventDetails(flags_changed=[ORDERS_OPEN.key]))
        flags._reload_failed(EventDetails(message="could not parse"))
    finally:
        flags.close()
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "but not as declared" in m], said
    assert [m for m in said if "not reloaded" in m and f"{path}:2: not JSON" in m], said


def test_closed_flags_say_nothing_more_even_of_an_event_queued_before(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK runs event handlers later, on its own thread pool: a read's event queued before
    close() can run after it, and spoke into whatever came next (a later test's log, in CI)."""
    caplog.set_level(logging.INFO, "golive_eventing.flags")
    flags = Flags(path, poll_ms=60_000)
    write(path, {"flags": {"orders-open": {"state": "ENABLED", "variants": {"on": 0},
                                           "defaultVariant": "on"}}})  # fmt: skip
    flags.close()
    caplog.clear()
    flags._reloaded(EventDetails(flags_changed=[ORDERS_OPEN.key]))  # as the pool runs it, late
    flags._reload_failed(EventDetails(message="could not parse"))
    assert caplog.records == []


# -- the provider under Flags: flagd's evaluator over the file ----------------------------------


def test_the_file_provider_says_each_change_once_and_a_refused_file_until_it_is_mended(
    path: Path,
) -> None:
    """Its events are what Flags logs from: one per change (not one per look, or the log would
    say "flags read" twice a second), an error on every look while the file is refused, and
    ready once it is read again; the flags read before answer meanwhile."""
    seen: list[tuple[ProviderEvent, ProviderEventDetails]] = []
    provider = FileProvider(path, poll_s=POLL_MS / 1000)
    provider.attach(lambda _provider, event, details: seen.append((event, details)))
    provider.initialize(EvaluationContext())
    try:
        assert seen == [(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, seen[0][1])]
        assert seen[0][1].flags_changed == ["orders-open"]
        _set(path, "off")

        def events() -> list[ProviderEvent]:
            return [event for event, _details in seen]

        eventually(lambda: len(seen) == 2, 10, "the change to be read")
        path.write_text('{\n  "flags": {,\n}\n')
        eventually(lambda: events()[2:4] == [ProviderEvent.PROVIDER_ERROR] * 2, 10, "errors")
        assert provider.resolve_boolean_details("orders-open", True).value is False
        _set_fresh(path, "on")
        eventually(
            lambda: ProviderEvent.PROVIDER_READY in events(), 10, "the mended file to be read"
        )
        after = events()[events().index(ProviderEvent.PROVIDER_READY) - 1 :]
        assert after == [ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, ProviderEvent.PROVIDER_READY]
        assert provider.resolve_boolean_details("orders-open", False).value is True
        settled = len(seen)
        provider._look()  # what its watch does, on the file now unchanged: nothing to say
        provider._look()
        assert events()[settled:] == []
    finally:
        provider.shutdown()


def test_the_file_provider_not_ready_at_start_reads_the_file_when_it_appears(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flags.json"
    seen: list[ProviderEvent] = []
    provider = FileProvider(path, poll_s=POLL_MS / 1000)
    provider.attach(lambda _provider, event, _details: seen.append(event))
    with pytest.raises(ProviderNotReadyError, match=str(path)):
        provider.initialize(EvaluationContext())
    try:
        path.write_text(VALID)
        eventually(lambda: ProviderEvent.PROVIDER_READY in seen, 10, "the file to be read")
        assert provider.resolve_boolean_details("orders-open", False).value is True
    finally:
        provider.shutdown()


def test_the_file_provider_reads_a_file_put_back_as_it_was(path: Path) -> None:
    """Moved away and back (a same inode, size and time): it was refused meanwhile, so it is
    read again and said to be, not taken as the file read before the failure."""
    seen: list[ProviderEvent] = []
    provider = FileProvider(path, poll_s=POLL_MS / 1000)
    provider.attach(lambda _provider, event, _details: seen.append(event))
    provider.initialize(EvaluationContext())
    try:
        aside = path.with_name("aside.json")
        path.rename(aside)
        eventually(lambda: ProviderEvent.PROVIDER_ERROR in seen, 10, "the removal to be seen")
        aside.rename(path)
        eventually(lambda: ProviderEvent.PROVIDER_READY in seen, 10, "the file to be read again")
    finally:
        provider.shutdown()


def test_the_file_provider_refuses_a_document_without_flags_keeping_those_read_before(
    path: Path,
) -> None:
    """flagd-core reads `{}` as no flags at all: every flag would drop to its fallback."""
    seen: list[ProviderEvent] = []
    provider = FileProvider(path, poll_s=POLL_MS / 1000)
    provider.attach(lambda _provider, event, _details: seen.append(event))
    provider.initialize(EvaluationContext())
    try:
        _set(path, "off")
        eventually(lambda: len(seen) == 2, 10, "the change to be read")
        path.write_text("{}\n")
        eventually(lambda: ProviderEvent.PROVIDER_ERROR in seen, 10, "the refusal")
        assert provider.resolve_boolean_details("orders-open", True).value is False
    finally:
        provider.shutdown()
