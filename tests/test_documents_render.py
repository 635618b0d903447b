"""Documents rendered with reportlab: every mandatory field, A4, embedded fonts, metadata without
patient data, page numbers and the prescriber block on every page, the ALD two-zone layout,
pages that poppler renders non-blank. The PDFs are read back with pypdf and pdftoppm."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from teleconsult.documents.forms import TEMPLATES
from teleconsult.documents.profile import ProfileIncomplete
from teleconsult.documents.render import render_pdf, render_document
from teleconsult.i18n import load_translations

from documents_samples import PATIENT, PRESCRIBER, document, drug, pages_text, profile, rendered_pages, text_positions

PRESCRIBER_LINES = ["Dr Hélène Œuvray-Çelik", "Médecin généraliste", "RPPS 10001234567", "12 rue de l’Église",
                    "75011 Paris", "+33 1 23 45 67 89", "h.oeuvray@example.org"]
EXPECTED = {
    "prescription": ["Ordonnance", "Le 23 novembre 2026", "LEFÈVRE-NOËL Zoé Anaïs", "Sexe : féminin",
                     "Né(e) le 12/03/1980 (46 ans)", "Poids : 70,5 kg", "Taille : 168 cm",
                     "Amoxicilline 1 g, comprimé", "1 comprimé matin et soir", "Durée : 7 jours",
                     "À renouveler 2 fois", "Paracétamol 500 mg, comprimé", "1 à 2 comprimés si douleur",
                     "Quantité : 2 boîtes", "Non renouvelable", "Kinésithérapie respiratoire : 10 séances"],
    "report": ["Compte rendu de téléconsultation", "LEFÈVRE-NOËL Zoé Anaïs", "Né(e) le 12/03/1980",
               "par vidéotransmission (téléconsultation) le 23 novembre 2026 à 14:30",
               "Motif de la consultation", "Toux depuis cinq jours", "Constatations", "température 38,2 °C",
               "Conclusion", "Bronchite aiguë", "Suivi", "Revoir si la fièvre dure plus de trois jours",
               "Fait le 23 novembre 2026"],
    "certificate": ["Certificat", "Je soussigné(e), Dr Hélène Œuvray-Çelik, Médecin généraliste, certifie",
                    "LEFÈVRE-NOËL Zoé Anaïs", "né(e) le 12/03/1980", "contre-indique la pratique du sport",
                    "remis en main propre, par voie électronique au cours de la téléconsultation",
                    "Fait le 23 novembre 2026"],
    "receipt": ["Reçu d’honoraires", "Reçu n° 2026-0042", "reconnais avoir reçu de LEFÈVRE-NOËL Zoé Anaïs",
                "25,00\xa0€", "Code de l’acte", "TCG", "carte bancaire", "Réglé le", "23/11/2026",
                "Fait le 23 novembre 2026"],
}


def flat(pdf: bytes) -> str:
    return " ".join(" ".join(pages_text(pdf)).split())


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_prints_every_mandatory_field_in_french_by_default(template):
    pdf = render_pdf(document(template), profile())
    text = flat(pdf)
    for expected in PRESCRIBER_LINES + EXPECTED[template]:
        assert " ".join(expected.split()) in text, expected
    last_page = PdfReader(io.BytesIO(pdf)).pages[-1]
    assert len(last_page.images) >= 2, "the logo and the signature image are drawn"


@pytest.mark.parametrize("template,expected", [
    ("prescription", ["Prescription", "On 23 November 2026", "Sex: female", "Born on 12/03/1980 (46 years)",
                      "Duration: 7 days", "To be renewed 2 times", "Quantity: 2 packs", "Not renewable"]),
    ("report", ["Teleconsultation report", "held by video (teleconsultation) on 23 November 2026 at 14:30"]),
    ("certificate", ["Certificate", "I, the undersigned", "handed to them in person, electronically"]),
    ("receipt", ["Fee receipt", "€25.00", "bank card", "Done on 23 November 2026"]),
])
def test_every_template_has_an_english_version(template, expected):
    changes = {"lines": [drug("Amoxicilline", duration="7 days", renewals=2),
                         drug("Paracétamol", duration="", packs=2)]} if template == "prescription" else {}
    text = flat(render_pdf(document(template, **changes), profile(), "en"))
    for phrase in expected:
        assert phrase in text, phrase
    assert "Ordonnance" not in text and "Fait le" not in text


def test_pages_are_a4_with_truetype_fonts_embedded_and_text_selectable():
    reader = PdfReader(io.BytesIO(render_pdf(document("prescription"), profile())))
    page = reader.pages[0]
    assert (round(float(page.mediabox.width), 1), round(float(page.mediabox.height), 1)) == (595.3, 841.9)
    fonts = page["/Resources"]["/Font"]
    assert fonts
    for ref in fonts.values():
        font = ref.get_object()
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"] if "/DescendantFonts" in font \
            else font["/FontDescriptor"]
        assert "/FontFile2" in descriptor.get_object(), f"{font['/BaseFont']} is not an embedded TrueType font"
        assert "/ToUnicode" in font, "without a ToUnicode map the text could not be selected"
    assert "Œuvray-Çelik" in page.extract_text()


@pytest.mark.parametrize("template", TEMPLATES)
def test_pdf_metadata_names_the_document_and_prescriber_and_nothing_of_the_patient(template):
    pdf = render_pdf(document(template), profile())
    meta = PdfReader(io.BytesIO(pdf)).metadata
    titles = {"prescription": "Ordonnance", "report": "Compte rendu de téléconsultation",
              "certificate": "Certificat", "receipt": "Reçu d’honoraires"}
    assert meta.title == titles[template]
    assert meta.author == PRESCRIBER["name"]
    values = " ".join(str(v) for v in meta.values())
    for patient_value in ("Lefèvre", "LEFÈVRE", "Zoé", "1980", "12/03"):
        assert patient_value not in values


def test_a_forty_line_prescription_numbers_its_pages_and_repeats_the_prescriber_block_on_each():
    lines = [drug(f"Médicament-{n:02d}") for n in range(1, 41)]
    pages = pages_text(render_pdf(document("prescription", lines=lines), profile()))
    total = len(pages)
    assert total >= 2
    for number, text in enumerate(pages, start=1):
        assert f"page {number}/{total}" in text
        for line in PRESCRIBER_LINES:
            assert line in text, (number, line)
        if number > 1:  # a loose page still says whose prescription it is
            assert "Ordonnance · LEFÈVRE-NOËL Zoé Anaïs · 23/11/2026" in text
    found = [name for text in pages for name in (f"Médicament-{n:02d}" for n in range(1, 41)) if name in text]
    assert found == [f"Médicament-{n:02d}" for n in range(1, 41)], "each line once, in order"


def test_a_one_page_document_carries_no_page_number():
    text = flat(render_pdf(document("prescription"), profile()))
    assert "page 1/1" not in text and "page 1" not in text


def _position(positions, needle):
    hits = [(page, -y) for page, y, text in positions if needle in text]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


@pytest.mark.parametrize("count", [4, 36])
def test_a_bizone_prescription_places_condition_lines_above_the_divide_and_others_below(count):
    lines = [drug(f"ALD-{n:02d}" if n % 2 else f"AUTRE-{n:02d}", ald=bool(n % 2)) for n in range(1, count + 1)]
    pdf = render_pdf(document("prescription", lines=lines, bizone=True), profile())
    positions = text_positions(pdf)
    top = _position(positions, "AFFECTION EXONÉRANTE") if count < 10 else _position(positions, "Prescriptions relatives")
    divide = _position(positions, "Prescriptions SANS RAPPORT")
    assert top < divide
    for n in range(1, count + 1):
        where = _position(positions, f"ALD-{n:02d}" if n % 2 else f"AUTRE-{n:02d}")
        if n % 2:
            assert top < where < divide, f"line {n} (ald) is not in the upper zone"
        else:
            assert divide < where, f"line {n} (not ald) is not in the lower zone"


def test_pdftoppm_renders_every_page_of_every_template_non_blank():
    documents = [document(t) for t in TEMPLATES]
    documents.append(document("prescription", lines=[drug(f"Médicament-{n}") for n in range(40)]))
    for doc in documents:
        pdf = render_pdf(doc, profile())
        images = rendered_pages(pdf)
        assert len(images) == len(PdfReader(io.BytesIO(pdf)).pages)
        for image in images:
            assert image.size in ((248, 351), (249, 351))  # A4 at 30 dpi, rounded either way
            dark = sum(1 for value in image.getdata() if value < 128)
            assert dark > 300, f"{doc.template}: a page is blank ({dark} dark pixels)"


def test_accented_names_survive_in_the_text_and_in_the_author():
    name = "Dr Ærwan Šimonek-Øyen d’Ébrard"
    pdf = render_pdf(document("certificate", patient={**PATIENT, "last_name": "Œuvray-Çelik",
                                                       "first_names": "Hélène Maïté"}),
                     profile(name=name))
    text = flat(pdf)
    assert "ŒUVRAY-ÇELIK Hélène Maïté" in text
    assert name in text
    assert PdfReader(io.BytesIO(pdf)).metadata.author == name


def test_text_typed_by_the_clinician_is_printed_literally_never_as_markup():
    tricky = "<b>Gras</b> & <font size=40>x</font> <br/>"
    text = flat(render_pdf(document("prescription", lines=[drug(tricky)]), profile()))
    assert tricky.strip() in text


def test_a_prescription_with_an_incomplete_profile_names_what_art_r5132_3_needs():
    bare = profile(qualification="", rpps="", address="", phone="", email="", signature=None)
    with pytest.raises(ProfileIncomplete) as refused:
        render_pdf(document("prescription"), bare)
    assert refused.value.missing == ("qualification", "rpps", "address", "phone", "email", "signature")
    french = refused.value.messages(load_translations()["fr"].gettext)
    assert "profile.rpps: ajoutez votre numéro RPPS, ADELI ou autre identifiant professionnel à votre profil" in french
    assert "profile.signature: ajoutez une image de votre signature à votre profil" in french
    # a report needs less: name and qualification
    with pytest.raises(ProfileIncomplete) as refused:
        render_pdf(document("report"), bare)
    assert refused.value.missing == ("qualification",)


def test_adeli_and_foreign_identifiers_are_labelled_as_such():
    assert "ADELI 751234567" in flat(render_pdf(document("prescription"), profile(rpps="751234567")))
    text = flat(render_pdf(document("prescription"), profile(rpps="GMC 7654321")))
    assert "Identifiant : GMC 7654321" in text


async def test_render_document_runs_off_the_event_loop_and_gives_the_same_pdf_text():
    pdf = await render_document(document("receipt"), profile(), "fr")
    assert pdf.startswith(b"%PDF-") and "25,00 €" in flat(pdf)
