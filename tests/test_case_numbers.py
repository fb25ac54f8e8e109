from __future__ import annotations

from datetime import UTC, datetime

from panel_core.cases.numbers import generate_case_number, is_valid_case_number


def test_generated_numbers_carry_prefix_year_and_a_valid_check_digit() -> None:
    numbers = {generate_case_number("KR", datetime(2026, 5, 1, tzinfo=UTC)) for _ in range(200)}
    assert len(numbers) > 190
    for number in numbers:
        assert number.startswith("KR-2026-")
        assert len(number) == len("KR-2026-12345678")
        assert is_valid_case_number(number)


def test_a_mistyped_digit_is_detected() -> None:
    number = generate_case_number("KR")
    last = number[-1]
    wrong = number[:-1] + str((int(last) + 1) % 10)
    assert not is_valid_case_number(wrong)
    swapped_year = number.replace(number[3:7], "2025") if number[3:7] != "2025" else number
    if swapped_year != number:
        assert not is_valid_case_number(swapped_year) or swapped_year[-1] != number[-1]


def test_malformed_numbers_are_rejected() -> None:
    for value in ["", "KR", "KR-2026-1234567", "kr-2026-12345678", "KR-2026-1234567a", "🙂"]:
        assert not is_valid_case_number(value)
