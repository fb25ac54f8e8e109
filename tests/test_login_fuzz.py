"""Malformed login input always gets a clean 4xx page, never a server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from bff.app import create_app
from tests.conftest import Stack

pytestmark = pytest.mark.engine

nasty = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(min_size=2000, max_size=5000, alphabet="0123456789KR-"),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            "' OR '1'='1' --",
            "KR-2026-1234567\x00",
            "\uff11\uff12\uff13\uff14",
            "١٢٣٤",
            "KR-2026-12345678; DROP TABLE case_file;",
            "\u202e4321",
            "%00",
            "{{7*7}}",
        ]
    ),
)


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[TestClient[Any]]:
    fuzz_settings = msgspec.structs.replace(stack.settings, login_min_response_seconds=0.0)
    with TestClient(create_app(fuzz_settings)) as test_client:
        test_client.get("/login")
        yield test_client


def _token(client: TestClient[Any]) -> str:
    return str(client.cookies.get("csrftoken"))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=nasty, fragment=nasty, code=nasty)
def test_identity_step_answers_malformed_input_with_a_clean_page(
    client: TestClient[Any], case: str, fragment: str, code: str
) -> None:
    response = client.post(
        "/login",
        data={"case": case, "fragment": fragment, "code": code, "_csrf_token": _token(client)},
        follow_redirects=False,
    )
    assert response.status_code in {303, 400, 423, 429}, response.text
    assert "<script>alert(1)</script>" not in response.text


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=nasty)
def test_code_step_answers_malformed_input_with_a_clean_page(
    client: TestClient[Any], code: str
) -> None:
    response = client.post(
        "/login/code", data={"code": code, "_csrf_token": _token(client)}, follow_redirects=False
    )
    assert response.status_code in {303, 400, 423, 429}, response.text
