"""Document forms: every field validated, every problem named with its field and a reason that
reads in French (the default) and English."""

from __future__ import annotations

from decimal import Decimal

import pytest

from teleconsult.documents.forms import FormInvalid, DrugLine, TextLine, parse_document, parse_language
from teleconsult.i18n import load_translations

from documents_samples import PATIENT, TODAY, document, drug


def problems(**data) -> dict[str, str]:
    with pytest.raises(FormInvalid) as refused:
        parse_document(data, today=TODAY)
    return {p.field: p.message for p in refused.value.problems}


def prescription(*lines, **changes):
    return {"template": "prescription", "patient": PATIENT, "lines": list(lines), **changes}


def test_a_drug_line_without_a_duration_is_refused_with_its_line_number():
    found = problems(**prescription(drug("Amoxicilline"), drug("Ibuprofène", duration="")))
    assert found == {"lines[2].duration": "give the duration of the treatment (or the number of packs)"}


def test_a_number_of_packs_stands_for_the_duration():
    doc = parse_document(prescription(drug("Ibuprofène", duration="", packs=1)), today=TODAY)
    assert doc.lines[0] == DrugLine("Ibuprofène", "500 mg", "1 comprimé matin et soir", "", 1, "comprimé", 0, False)


def test_a_birth_date_in_the_future_is_refused():
    found = problems(**prescription(drug("Amoxicilline"), patient={**PATIENT, "birth_date": "2026-11-24"}))
    assert found == {"patient.birth_date": "this date is in the future"}


def test_every_problem_is_reported_at_once_not_only_the_first():
    found = problems(template="prescription", patient={"last_name": "", "first_names": "Zoé", "sex": "W",
                                                        "birth_date": "12/03/1980", "weight_kg": 900},
                     lines=[{"drug": "A", "dosage": "1 g", "duration": "3 j", "renewals": 40}, {"text": ""}],
                     date="2027-01-01", dosge="typo")
    assert found == {
        "dosge": "unknown field",
        "patient.last_name": "this field is required",
        "patient.sex": "expected F, M or X",
        "patient.birth_date": "expected a date as YYYY-MM-DD",
        "patient.weight_kg": "a weight in kilograms between %(low)s and %(high)s, one decimal at most",
        "lines[1].directions": "this field is required",
        "lines[1].renewals": "a number of renewals between %(low)s and %(high)s",
        "lines[2].text": "this field is required",
        "date": "this date is in the future",
    }


def test_reasons_read_in_french_by_default_and_in_english():
    with pytest.raises(FormInvalid) as refused:
        parse_document(prescription(drug("Amoxicilline", duration="", renewals=13)), today=TODAY)
    french = refused.value.messages(load_translations()["fr"].gettext)
    assert french == ["lines[1].duration: indiquez la durée du traitement (ou le nombre de boîtes)",
                      "lines[1].renewals: un nombre de renouvellements entre 0 et 12"]
    assert str(refused.value) == ("lines[1].duration: give the duration of the treatment (or the number of packs); "
                                  "lines[1].renewals: a number of renewals between 0 and 12")


def test_free_text_lines_serve_non_drug_prescriptions():
    doc = parse_document(prescription({"text": "NFS, CRP\nà jeun"}, {"text": "Radiographie thoracique", "ald": True}),
                         today=TODAY)
    assert doc.lines == (TextLine("NFS, CRP\nà jeun"), TextLine("Radiographie thoracique", True))
    assert doc.bizone, "a line related to the long-term condition chooses the two-zone layout"


def test_a_line_marked_ald_on_a_one_zone_prescription_is_refused():
    found = problems(**prescription(drug("Metformine", ald=True), bizone=False))
    assert list(found) == ["bizone"]


def test_a_prescription_needs_sex_and_birth_date_a_receipt_only_the_names():
    bare = {"last_name": "Noël", "first_names": "Zoé"}
    found = problems(**prescription(drug("Amoxicilline"), patient=bare))
    assert found == {"patient.sex": "this field is required", "patient.birth_date": "this field is required"}
    receipt = document("receipt", patient=bare)
    assert receipt.patient.birth_date is None and receipt.amount == Decimal("25")


def test_a_character_the_document_font_cannot_print_is_refused_rather_than_printed_as_a_box():
    found = problems(**prescription(drug("Amoxicilline"), patient={**PATIENT, "first_names": "李 Zoé"}))
    assert found == {"patient.first_names": "the character “%(char)s” cannot be printed in a document"}
    found = problems(**prescription(drug("Amoxicilline\x07")))
    assert found == {"lines[1].drug": "contains a control character"}


def test_sizes_are_bounded():
    found = problems(**prescription(*[drug(f"D{n}") for n in range(101)]))
    assert found == {"lines": "at most %(n)s lines"}
    found = problems(**prescription(drug("x" * 401)))
    assert found == {"lines[1].drug": "at most %(n)s characters"}


@pytest.mark.parametrize("amount,expected", [("25", Decimal("25")), ("25,50", Decimal("25.50")), (30.5, Decimal("30.5"))])
def test_a_receipt_amount_is_read_in_either_decimal_notation(amount, expected):
    assert document("receipt", amount=amount).amount == expected


@pytest.mark.parametrize("amount", ["12.345", "-3", "0", "abc", True, "NaN", "1e9"])
def test_a_receipt_amount_out_of_bounds_or_too_precise_is_refused(amount):
    assert problems(template="receipt", patient=PATIENT, amount=amount, act_code="TCG", payment_mode="card") == {
        "amount": "an amount between %(low)s and %(high)s, two decimals at most"}


def test_a_receipt_names_its_payment_mode_and_currency_from_fixed_lists():
    found = problems(template="receipt", patient=PATIENT, amount="25", act_code="TCG", payment_mode="bitcoin",
                     currency="XXQ")
    assert found == {"payment_mode": "expected card, transfer, cheque, cash or other",
                     "currency": "expected a currency code such as EUR"}


def test_a_report_states_when_the_video_consultation_was_held():
    assert problems(template="report", patient=PATIENT, reason="r", findings="f", conclusion="c") == {
        "held_at": "this field is required"}
    assert document("report").held_at.isoformat() == "2026-11-23T14:30:00"


def test_an_unknown_template_or_language_is_refused():
    assert problems(template="invoice") == {"template": "expected prescription, report, certificate or receipt"}
    assert problems(**prescription(drug("A"), lang="de")) == {"lang": "expected fr or en"}
    assert parse_language(None) == "fr" and parse_language("en") == "en"
    assert problems(**{"template": "certificate", "patient": "Zoé", "text": "t"})["patient"] == "expected an object"
