"""Sample profiles and documents for the document tests, and ways to read a PDF back
(pypdf for text and positions, pdftoppm from poppler-utils for pixels)."""

from __future__ import annotations

import io
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from PIL import Image, ImageDraw
from pypdf import PdfReader

from teleconsult.documents.forms import parse_document
from teleconsult.documents.profile import ImageLimits, Profile, clean_image

TODAY = date(2026, 11, 23)
LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_pixels=12_000_000)
PRESCRIBER = {
    "name": "Dr Hélène Œuvray-Çelik",
    "qualification": "Médecin généraliste",
    "rpps": "10001234567",
    "address": "12 rue de l’Église\n75011 Paris",
    "phone": "+33 1 23 45 67 89",
    "email": "h.oeuvray@example.org",
}
PATIENT = {"last_name": "Lefèvre-Noël", "first_names": "Zoé Anaïs", "sex": "F", "birth_date": "1980-03-12",
           "weight_kg": "70,5", "height_cm": 168}


def png(size=(400, 150), color="white", **save) -> bytes:
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).line((10, size[1] - 20, size[0] // 3, 20, size[0] - 10, size[1] // 2), fill="navy", width=5)
    out = io.BytesIO()
    image.save(out, "PNG", **save)
    return out.getvalue()


def jpeg(size=(300, 300), **save) -> bytes:
    image = Image.effect_noise(size, 60).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", **save)
    return out.getvalue()


def profile(**changes) -> Profile:
    fields = {**PRESCRIBER, **changes}
    if "signature" not in fields:
        fields["signature"] = clean_image("signature", png(), LIMITS)
    if "logo" not in fields:
        fields["logo"] = clean_image("logo", jpeg((200, 120)), LIMITS)
    return Profile("clinician-1", **fields)


def drug(name: str, **changes) -> dict:
    return {"drug": name, "dosage": "500 mg", "form": "comprimé", "directions": "1 comprimé matin et soir",
            "duration": "7 jours", "renewals": 0, **changes}


SAMPLES = {
    "prescription": {
        "lines": [drug("Amoxicilline", dosage="1 g", renewals=2),
                  drug("Paracétamol", directions="1 à 2 comprimés si douleur", duration="", packs=2),
                  {"text": "Kinésithérapie respiratoire : 10 séances"}],
    },
    "report": {"held_at": "2026-11-23T14:30", "reason": "Toux depuis cinq jours",
               "findings": "Pas de dyspnée ; température 38,2 °C", "conclusion": "Bronchite aiguë",
               "follow_up": "Revoir si la fièvre dure plus de trois jours"},
    "certificate": {"text": "Son état de santé contre-indique la pratique du sport pendant quinze jours."},
    "receipt": {"amount": "25", "act_code": "TCG", "payment_mode": "card", "number": "2026-0042"},
}


def document(template: str, **changes):
    data = {"template": template, "patient": PATIENT, **SAMPLES[template], **changes}
    return parse_document(data, today=TODAY)


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def text_positions(pdf: bytes) -> list[tuple[int, float, str]]:
    """(page index, y from the bottom in points, text) of every piece of text pypdf sees."""
    found = []
    for index, page in enumerate(PdfReader(io.BytesIO(pdf)).pages):
        def visit(text, cm, tm, _font, _size, index=index):
            if text.strip():
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                found.append((index, y, text))
        page.extract_text(visitor_text=visit)
    return found


def rendered_pages(pdf: bytes, dpi: int = 30) -> list[Image.Image]:
    """Each page rasterised by poppler's pdftoppm (grey levels)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "doc.pdf"
        source.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", str(source), str(Path(tmp) / "page")],
                       check=True, capture_output=True)
        return [Image.open(path).copy() for path in sorted(Path(tmp).glob("page-*.pgm"))]
