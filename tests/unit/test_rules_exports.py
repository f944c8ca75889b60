"""The exports' pure rules: formats and file names, amounts in a currency's major unit, and names as
a door list shows and sorts them."""

from __future__ import annotations

import pytest

from server.domain.exports.rules import (
    DOOR_LIST_FORMATS,
    FORMATS,
    NO_NAME,
    check_format,
    display_name,
    file_name,
    name_order,
    price,
)
from server.errors import InvalidRequest

BASE_MS = 1_798_747_200_000  # 2026-12-31T20:00:00.000Z


def test_prices() -> None:
    assert str(price(1250, "eur")) == "12.50" and str(price(5, "usd")) == "0.05"
    assert str(price(3000, "jpy")) == "3000" and str(price(1250, "KWD")) == "1.250"


def test_file_names() -> None:
    assert file_name("Entrée principale", "xlsx", BASE_MS) == "entree-principale-2026-12-31.xlsx"
    assert file_name("入口", "scans-csv", BASE_MS) == "check-in-list-scans-2026-12-31.csv"
    assert file_name("VIP / Lounge", "conflicts-csv", BASE_MS) == "vip-lounge-conflicts-2026-12-31.csv"
    assert file_name("Door", "csv-semicolon", BASE_MS) == "door-2026-12-31.csv"


def test_a_format_is_one_of_the_known_ones() -> None:
    assert set(DOOR_LIST_FORMATS) < set(FORMATS)
    assert check_format("pdf").content_type == "application/pdf"
    with pytest.raises(InvalidRequest, match="format must be one of csv, csv-semicolon, xlsx, pdf"):
        check_format("docx")


def test_missing_names_show_as_a_dash() -> None:
    assert display_name("Ada") == "Ada"
    assert display_name(None) == display_name("  ") == NO_NAME


def test_names_sort_ignoring_case_and_accents_missing_ones_last() -> None:
    people = [("zoe", "T4"), (None, "T1"), ("Émile", "T3"), ("emile", "T2"), (" ", "T0"), ("Ada", "T5")]
    ordered = sorted(people, key=lambda p: name_order(p[0], p[1]))
    assert [number for _, number in ordered] == ["T5", "T2", "T3", "T4", "T0", "T1"]
