"""Field value rules: normalisation of raw input and validation against options."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keel.core.errors import FieldError
from keel.core.fields.base import Field
from keel.core.fields.date import DateField, format_datetime, now_text, parse_datetime
from keel.core.fields.number import BoolField, NumberField
from keel.core.fields.select import SelectField
from keel.core.fields.text import TextField, compile_generator, generate


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        (NumberField("n"), "12", 12),
        (NumberField("n"), "1.50", 1.5),
        (NumberField("n"), 3.0, 3),
        (NumberField("n"), None, 0),
        (BoolField("b"), "TRUE", True),
        (BoolField("b"), "0", False),
        (BoolField("b"), 1, True),
        (TextField("t"), 123, "123"),
        (DateField("d"), "2024-01-02", "2024-01-02 00:00:00.000Z"),
        (DateField("d"), "2024-01-02T10:00:00+02:00", "2024-01-02 08:00:00.000Z"),
        (SelectField("s", values=["a", "b"], maxSelect=2), "a", ["a"]),
        (SelectField("s", values=["a", "b"], maxSelect=2), ["a", "a", "b"], ["a", "b"]),
    ],
)
def test_normalize(field: Field, raw: Any, expected: Any) -> None:
    """Raw JSON or form input becomes the canonical stored value."""
    assert expected == field.normalize(raw)


@pytest.mark.parametrize(
    ("field", "raw", "code"),
    [
        (NumberField("n"), "abc", "validation_invalid_type"),
        (NumberField("n"), True, "validation_invalid_type"),
        (NumberField("n"), "nan", "validation_not_a_number"),
        (NumberField("n"), 2**60, "validation_not_a_number"),
        (BoolField("b"), "maybe", "validation_invalid_type"),
        (TextField("t"), [1], "validation_invalid_type"),
        (DateField("d"), "tomorrow", "validation_invalid_date"),
        (SelectField("s", values=["a"]), ["a", "b"], "validation_too_many_values"),
    ],
)
def test_normalize_rejects(field: Field, raw: Any, code: str) -> None:
    """Input of the wrong type is an error, never a silent zero."""
    with pytest.raises(FieldError) as info:
        field.normalize(raw)
    assert code == info.value.code


def test_required_zero_values() -> None:
    """As in PocketBase, a required number refuses 0 and a required bool refuses false."""
    for field, value in (
        (NumberField("n", required=True), 0),
        (BoolField("b", required=True), False),
    ):
        with pytest.raises(FieldError) as info:
            field.validate(value)
        assert "validation_required" == info.value.code


def test_generator_patterns() -> None:
    """Autogenerate patterns made of [charset]{n} parts produce matching strings."""
    assert (("abc", 2), ("0123456789", 3)) == compile_generator("[a-c]{2}[0-9]{3}")
    assert compile_generator("(a|b)+") is None
    assert compile_generator("[z-a]{5}") is None  # an empty charset
    assert compile_generator("[a-z]{5001}") is None  # too long
    value = generate("[a-z0-9]{15}")
    assert 15 == len(value) and value.isalnum() and value.lower() == value
    wide = generate("[\u0100-\u05ff]{40}")  # more than 256 characters to draw from
    assert 40 == len(wide) and all(0x100 <= ord(c) <= 0x5FF for c in wide)
    accented = generate("[\u00e0-\u00ff]{30}")  # few characters, not ASCII
    assert 30 == len(accented) and all(0xE0 <= ord(c) <= 0xFF for c in accented)


def test_now_text_is_the_clock_in_pocketbase_form() -> None:
    """now_text is the current UTC time, to the millisecond, as format_datetime writes it."""
    for _ in range(200):
        before = datetime.now(UTC)
        text = now_text()
        after = datetime.now(UTC)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z", text), text
        assert text == format_datetime(parse_datetime(text))
        # Truncated to the millisecond, so up to 1 ms before the first read.
        assert before - timedelta(milliseconds=1) <= parse_datetime(text) <= after


def test_generated_characters_are_equally_likely() -> None:
    """Every character of the set is drawn equally often: no bias toward its first ones."""
    draws = "".join(generate("[a-z0-9]{1000}") for _ in range(1000))
    counts = Counter(draws)
    expected = len(draws) / 36
    # A modulo-biased draw would give a-d about 14 % more (24 standard deviations).
    assert set("abcdefghijklmnopqrstuvwxyz0123456789") == set(counts)
    assert all(abs(n - expected) < 900 for n in counts.values()), counts
