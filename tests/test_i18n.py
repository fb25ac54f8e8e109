"""Every UI text exists in Polish, and the panel speaks the language chosen."""

from __future__ import annotations

from devtools.messages import extract, untranslated
from panel_core.i18n import gettext, pick, use_locale


def test_every_ui_text_has_a_polish_translation() -> None:
    assert len(extract()) > 100  # the extractor did find the texts
    assert untranslated("pl") == []


def test_polish_is_the_default_and_english_is_one_switch_away() -> None:
    assert gettext("Sign out") == "Wyloguj się"
    with use_locale("en"):
        assert gettext("Sign out") == "Sign out"
        assert gettext("Enter the last %(n)s digits of your PESEL number.", n=4) == (
            "Enter the last 4 digits of your PESEL number."
        )
    assert gettext("Enter the last %(n)s digits of your PESEL number.", n=4) == (
        "Wpisz ostatnie 4 cyfry numeru PESEL."
    )


def test_descriptor_texts_fall_back_to_polish_then_to_anything() -> None:
    with use_locale("en"):
        assert pick({"pl": "Zgody", "en": "Consents"}) == "Consents"
        assert pick({"pl": "Zgody"}) == "Zgody"
    assert pick({"en": "Only English"}) == "Only English"


def test_form_texts_follow_the_language_through_custom_properties() -> None:
    import json
    from pathlib import Path

    from panel_core.forms import input_components, localise

    schema = json.loads(
        (
            Path(__file__).resolve().parent.parent
            / "bpmn/credit-application/forms/credit-income.form"
        ).read_text()
    )
    polish = {c["key"]: c for c in input_components(localise(schema, "pl"))}
    english = {c["key"]: c for c in input_components(localise(schema, "en"))}
    assert polish["employmentType"]["label"] == "Forma zatrudnienia"
    assert english["employmentType"]["label"] == "Employment type"
    assert [o["label"] for o in english["employmentType"]["values"]][:2] == [
        "Employed",
        "Self-employed",
    ]
    assert english["incomeNotes"]["description"] == "Optional, at most 500 characters."
    # The values the process sees never change with the language.
    assert [o["value"] for o in english["employmentType"]["values"]] == [
        o["value"] for o in polish["employmentType"]["values"]
    ]
