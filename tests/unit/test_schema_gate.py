"""The schema gate names the subject, the field and the rule a careless change breaks."""

from __future__ import annotations

import json

import pytest
from golive_cli.main import app
from golive_cli.schema_gate import Earlier, Problem, check_against_ref, compare, unclassified
from golive_contracts.avro import avro_schema
from golive_contracts.events import EVENT_TYPES, Event, OrderConfirmed, OrderPlaced
from golive_contracts.fields import personal, public
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from tests.schema_changes import changed

pytestmark = pytest.mark.unit

SUBJECT = "orders-dev.golive.orders.OrderPlaced"


def problems_of(event: type[Event]) -> list[Problem]:
    """The gate against the versions committed at HEAD and in the working tree."""
    _, problems = check_against_ref("HEAD", events=(event,))
    return [p for p in problems if p.rule != "schema not committed"]


def test_the_working_tree_passes() -> None:
    subjects, problems = check_against_ref("HEAD")
    assert problems == []
    assert SUBJECT in subjects


def test_removing_a_field_without_default_is_rejected() -> None:
    problems = problems_of(changed(drop=("total_minor",)))
    assert [(p.subject, p.field, p.rule) for p in problems] == [
        (SUBJECT, "total_minor", "field removed without a default")
    ]
    assert str(problems[0]).startswith(
        f"{SUBJECT}, field total_minor: field removed without a default: readers of v1 at HEAD "
        "need total_minor and it had no default there; keep the field"
    )
    assert "also against v2" in problems[0].detail


def test_renaming_a_field_is_rejected_as_a_rename() -> None:
    problems = problems_of(
        changed(drop=("email",), add={"email_address": (str, personal("Where we write."))})
    )
    assert [(p.field, p.rule) for p in problems] == [("email", "field renamed")]
    assert "email in v1 at HEAD is email_address now" in problems[0].detail


def test_changing_a_fields_type_is_rejected() -> None:
    problems = problems_of(changed(add={"total_minor": (str, public("Now text."))}))
    assert [(p.field, p.rule) for p in problems] == [("total_minor", "type changed")]
    assert problems[0].detail.startswith("long in v1 at HEAD is string now")
    assert "neither reads the other's records" in problems[0].detail


def test_widening_a_type_still_breaks_old_readers() -> None:
    old = avro_schema(OrderConfirmed)
    new = json.loads(json.dumps(old))
    new["fields"][1]["type"] = ["null", {"type": "string", "logicalType": "uuid"}]
    new["fields"][1]["default"] = None
    (problem,) = compare("s", new, [Earlier("v1", old)])
    assert problem.rule == "type changed"
    assert problem.detail.endswith("readers of v1 cannot read it")


def test_a_nested_field_is_named_by_its_path() -> None:
    old = avro_schema(OrderPlaced)
    new = json.loads(json.dumps(old))
    address = next(f for f in new["fields"] if f["name"] == "shipping_address")["type"]
    address["fields"] = [f for f in address["fields"] if f["name"] != "city"]
    (problem,) = compare(SUBJECT, new, [Earlier("v1", old)])
    assert (problem.field, problem.rule) == (
        "shipping_address.city",
        "field removed without a default",
    )


def test_adding_a_field_without_default_is_rejected_against_every_version() -> None:
    # v2 added channel with a default; without one, v1's records cannot be read: transitive.
    problems = problems_of(changed(add={"channel": (str, public("No default."))}))
    assert [(p.field, p.rule) for p in problems] == [("channel", "field added without a default")]
    assert "records written with v1 at HEAD have no channel" in problems[0].detail


def test_adding_an_optional_field_with_a_default_passes() -> None:
    added = changed(add={"coupon": (str | None, public("Discount code.", default=None))})
    assert problems_of(added) == []
    _, problems = check_against_ref("HEAD", events=(added,))
    assert [p.rule for p in problems] == ["schema not committed"]  # it still needs its v3 file


def test_an_unclassified_field_fails_the_gate() -> None:
    careless = changed(add={"nickname": (str | None, FieldInfo(default=None))})
    problems = problems_of(careless)
    assert [p.rule for p in problems] == ["unclassified field"]
    assert "OrderPlaced.nickname is not classified" in problems[0].detail


def test_an_unmarked_field_in_a_schema_is_named() -> None:
    schema = avro_schema(OrderConfirmed)
    del schema["fields"][1]["pii"]
    assert [(p.field, p.rule) for p in unclassified("s", schema)] == [
        ("order_id", "unclassified field")
    ]


def test_the_command_says_what_it_checked_or_why_it_could_not() -> None:
    runner = CliRunner()
    passed = runner.invoke(app, ["schemas", "check", "--against-ref", "HEAD"])
    assert passed.exit_code == 0, passed.output
    assert f"schema gate passed: {len(EVENT_TYPES)} subjects" in passed.output

    missing = runner.invoke(app, ["schemas", "check", "--against-ref", "no-such-ref"])
    assert missing.exit_code == 1
    assert "schema gate could not run" in missing.output
    malformed = runner.invoke(app, ["schemas", "check", "--against-ref", "HEAD", "--topic", "x"])
    assert malformed.exit_code == 1
    assert "--topic takes logical=actual" in malformed.output
    nothing = runner.invoke(app, ["schemas", "check"], env={"SCHEMA_REGISTRY_URL": None})
    assert nothing.exit_code == 1
    assert "give --against-ref REF" in nothing.output
