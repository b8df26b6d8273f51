"""``goalgraph.recovery.listed_alternative``: the value a failed call's error lists that the call
clearly meant, for any tool."""

from __future__ import annotations

import pytest

from goalgraph.recovery import (
    listed_alternative,
    with_echoed_alternative,
    with_listed_alternative,
)

SKUS = (
    "no product with SKU {!r}; SKUs: bolt-m6, clamp-bar-60, dowel-8, drawer-slide-45, glue-pva, "
    "hinge-brass, knob-walnut, sandpaper-120, screw-wood-4, varnish-oak"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("walnut knobs", "knob-walnut"),  # the same words, in another order, plural
        ("Brass Hinge", "hinge-brass"),
        ("oak varnish", "varnish-oak"),
        ("sandpaper", "sandpaper-120"),
        ("glue", None),  # too far from "glue-pva" to be sure
        ("oak table", None),  # nothing listed is close
        ("knob-walnut", None),  # already a listed value: the error is about something else
    ],
)
def test_a_listed_sku_is_suggested_only_when_clearly_meant(value: str, expected: str | None):
    found = listed_alternative({"sku": value}, SKUS.format(value))
    assert found == (None if expected is None else ("sku", expected))


def test_the_calls_own_value_quoted_in_the_error_is_no_suggestion():
    error = "no customer named 'lena'; customers: Lena Ortiz, Marco Rossi"
    assert listed_alternative({"name": "lena"}, error) is None
    assert listed_alternative(
        {"table": "customer"}, "no such table: customer; tables: customers, orders"
    ) == ("table", "customers")


def test_two_near_ties_suggest_neither():
    error = "unknown item; items: pine-table-a, pine-table-b, oak-chair"
    assert listed_alternative({"item": "pine table"}, error) is None
    assert listed_alternative({"item": "oak chairs"}, error) == ("item", "oak-chair")


def test_an_error_that_already_suggests_is_left_alone():
    error = "no such file: 'todo.txt'; did you mean 'notes/todo.txt'?"
    assert with_listed_alternative(error, {"path": "todo.txt"}) == error


def test_the_suggestion_is_added_to_the_error():
    error = SKUS.format("walnut knobs")
    assert with_listed_alternative(error, {"sku": "walnut knobs", "count": 2}) == (
        f"{error}; did you mean sku='knob-walnut'?"
    )


def test_a_successful_miss_that_quotes_the_argument_names_the_listed_value():
    miss = "no product matches 'bar clamps'; SKUs: bolt-m6, clamp-bar-60, dowel-8, glue-pva"
    assert with_echoed_alternative(miss, {"text": "bar clamps", "low_stock_only": False}) == (
        f"{miss}; did you mean text='clamp-bar-60'?"
    )


@pytest.mark.parametrize(
    ("output", "args"),
    [
        # A hit lists values but does not quote the argument back: nothing is suggested.
        ("glue-pva: PVA wood glue 500 ml - 37 in stock", {"text": "PVA glue"}),
        ("clamp-bar-60: Bar clamp 60 cm, bolt-m6: M6 bolt", {"text": "bar clamps"}),
        # Quoted back, but nothing listed is close.
        ("no product matches 'oak table'; SKUs: bolt-m6, glue-pva", {"text": "oak table"}),
    ],
)
def test_a_successful_output_is_left_alone_unless_it_quotes_a_clear_miss(
    output: str, args: dict[str, object]
):
    assert with_echoed_alternative(output, args) == output


def test_a_name_and_id_copied_from_another_output_suggests_the_listed_id():
    """get_product shows "supplier: Abrasivo SA (abrasivo)"; the 0.5B model passed that whole
    display form to get_supplier, which looks up the id or the name, and called it again."""
    error = (
        "no supplier 'Abrasivo SA (abrasivo)'; suppliers: Abrasivo SA (abrasivo), "
        "Boltworks Ltd (boltworks)"
    )
    assert with_listed_alternative(error, {"supplier": "Abrasivo SA (abrasivo)"}).endswith(
        "; did you mean supplier='abrasivo'?"
    )
    customers = "no customer matches 'Ada Brook (c-ada)'; customers: Ada Brook, Lena Fischer"
    assert listed_alternative({"status": "open", "customer": "Ada Brook (c-ada)"}, customers) == (
        "customer",
        "Ada Brook",
    )


def test_a_display_form_gets_no_suggestion_when_the_error_lists_neither_part_or_is_not_about_it():
    assert listed_alternative({"supplier": "Foo Ltd (foo)"}, "no supplier 'Foo Ltd (foo)'") is None
    unrelated = "only 6 units of clamp-bar-60 in stock; cannot order 9"
    assert listed_alternative({"sku": "Bar clamp (clamp-bar-60)"}, unrelated) is None
