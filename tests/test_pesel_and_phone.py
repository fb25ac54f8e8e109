from __future__ import annotations

import contextlib
import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panel_core.identity.pesel import (
    PeselError,
    birth_date,
    fragment_hash,
    fragment_of,
    make_pesel,
    validate_pesel,
)
from panel_core.identity.phone import PhoneError, normalize_phone


@pytest.mark.parametrize(
    ("pesel", "born"),
    [
        ("44051401359", date(1944, 5, 14)),
        ("02270803624", date(2002, 7, 8)),
        ("85911312345", date(1885, 11, 13)),
    ],
)
def test_valid_numbers_and_the_century_in_the_month(pesel: str, born: date) -> None:
    assert validate_pesel(pesel) == pesel
    assert birth_date(pesel) == born


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("4405140135", "11 digits"),
        ("440514013590", "11 digits"),
        ("4405140135a", "11 digits"),
        ("44051401358", "check digit"),
        ("44023001359", "date"),
        ("44130101355", "date"),
        ("", "11 digits"),
    ],
)
def test_invalid_numbers_say_why(value: str, reason: str) -> None:
    with pytest.raises(PeselError, match=reason):
        validate_pesel(value)


@given(
    born=st.dates(min_value=date(1800, 1, 1), max_value=date(2299, 12, 31)),
    serial=st.integers(min_value=0, max_value=9999),
)
def test_every_generated_pesel_is_valid_and_encodes_its_date(born: date, serial: int) -> None:
    pesel = make_pesel(born, serial)
    assert validate_pesel(pesel) == pesel
    assert birth_date(pesel) == born


@given(st.text(max_size=30))
def test_arbitrary_text_is_either_valid_or_rejected_cleanly(value: str) -> None:
    with contextlib.suppress(PeselError):
        assert len(validate_pesel(value)) == 11


def test_fragment_hash_is_keyed_and_bound_to_the_case() -> None:
    case_a, case_b = uuid.uuid4(), uuid.uuid4()
    fragment = fragment_of("44051401359", 4)
    assert fragment == "1359"
    first = fragment_hash("key-1", case_a, fragment)
    assert first == fragment_hash("key-1", case_a, fragment)
    assert first != fragment_hash("key-2", case_a, fragment)
    assert first != fragment_hash("key-1", case_b, fragment)
    assert "1359" not in first


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+48 600 700 800", "+48600700800"),
        ("600-700-800", "+48600700800"),
        ("0048600700800", "+48600700800"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_are_normalised(value: str, expected: str) -> None:
    assert normalize_phone(value) == expected


@pytest.mark.parametrize(
    "value", ["", "12345", "+0 600 700 800", "phone", "+48 600 700 800 900 100"]
)
def test_bad_phone_numbers_are_refused(value: str) -> None:
    with pytest.raises(PhoneError):
        normalize_phone(value)
