"""Render a validated document (forms.py) with the clinician's profile into a PDF, in memory.

`render_pdf(document, profile, lang)` returns the PDF's bytes (CPU-bound: about a few
milliseconds a page, see docs/benchmarks.md); `render_document` runs it in a thread. The
profile must hold what the template needs (profile.REQUIRED), else ProfileIncomplete names
what is missing. Nothing is stored and nothing of the content is logged.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import date

from babel.support import NullTranslations
from reportlab.platypus import CondPageBreak, Flowable, HRFlowable, KeepTogether, Paragraph, Spacer, Table

from ..i18n import load_translations
from .forms import Certificate, Document, DrugLine, Patient, Prescription, Receipt, Report, TextLine, _
from .layout import CONTENT_WIDTH, INK, Language, build, signature_block, styles, table, text
from .profile import Profile, require_complete

_TITLES = {
    "prescription": _("Prescription"),
    "report": _("Teleconsultation report"),
    "certificate": _("Certificate"),
    "receipt": _("Fee receipt"),
}
_SEXES = {"F": _("female"), "M": _("male"), "X": _("unspecified")}
_PAYMENT = {"card": _("bank card"), "transfer": _("bank transfer"), "cheque": _("cheque"), "cash": _("cash"),
            "other": _("other")}


@functools.cache
def _catalogs() -> dict[str, NullTranslations]:
    return load_translations()


def render_pdf(document: Document, profile: Profile, lang: str = "fr",
               translations: NullTranslations | None = None) -> bytes:
    require_complete(profile, document.template)
    language = Language(lang, translations or _catalogs()[lang])
    st = styles()
    title = language.t(_TITLES[document.template])
    story: list[Flowable] = [_title_row(title, document.date, language, st)]
    story += _BODIES[type(document)](document, profile, language, st)
    patient = document.patient
    running = "  ·  ".join([title, f"{patient.last_name.upper()} {patient.first_names}",
                            language.short_date(document.date)])
    return build(story, profile=profile, lang=language, title=title, running=running)


async def render_document(document: Document, profile: Profile, lang: str = "fr",
                          translations: NullTranslations | None = None) -> bytes:
    """render_pdf off the event loop."""
    return await asyncio.to_thread(render_pdf, document, profile, lang, translations)


def _title_row(title: str, day: date, lang: Language, st) -> Table:
    return table([[Paragraph(text(title), st["title"]),
                   Paragraph(text(lang.t(_("On %(date)s"), date=lang.long_date(day))), st["right"])]],
                 [CONTENT_WIDTH * 0.6, CONTENT_WIDTH * 0.4],
                 [("VALIGN", (0, 0), (-1, -1), "BOTTOM"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                  ("RIGHTPADDING", (0, 0), (-1, -1), 0)])


def _age(birth: date, day: date, lang: Language) -> str:
    months = (day.year - birth.year) * 12 + day.month - birth.month - (day.day < birth.day)
    if months < 24:
        return lang.n_("%(n)s month", "%(n)s months", months)
    return lang.n_("%(n)s year", "%(n)s years", months // 12)


def patient_block(patient: Patient, day: date, lang: Language, st) -> list[Flowable]:
    """Surname (in capitals, as French forms write it), first names, sex, birth date and age,
    weight and height when given."""
    name = f"<b>{text(patient.last_name.upper())}</b> {text(patient.first_names)}"
    lines = [Paragraph(lang.t(_("Patient: %(name)s"), name=name), st["body"])]
    facts = []
    if patient.sex:
        facts.append(lang.t(_("Sex: %(sex)s"), sex=lang.t(_SEXES[patient.sex])))
    if patient.birth_date:
        facts.append(lang.t(_("Born on %(date)s (%(age)s)"), date=lang.short_date(patient.birth_date),
                            age=_age(patient.birth_date, day, lang)))
    if patient.weight_kg is not None:
        facts.append(lang.t(_("Weight: %(kg)s kg"), kg=lang.decimal(patient.weight_kg)))
    if patient.height_cm is not None:
        facts.append(lang.t(_("Height: %(cm)s cm"), cm=patient.height_cm))
    if facts:
        lines.append(Paragraph(text("  ·  ".join(facts)), st["body"]))
    return [KeepTogether(lines), Spacer(1, 6)]


def _drug_line(number: int, line: DrugLine, lang: Language, st) -> Flowable:
    head = f"{number}.&nbsp;&nbsp;<b>{text(line.drug)}</b> {text(line.dosage)}"
    if line.form:
        head += f", {text(line.form)}"
    parts: list[Flowable] = [Paragraph(head, st["line"]), Paragraph(text(line.directions), st["detail"])]
    terms = []
    if line.duration:
        terms.append(lang.t(_("Duration: %(duration)s"), duration=line.duration))
    if line.packs is not None:
        terms.append(lang.t(_("Quantity: %(packs)s"), packs=lang.n_("%(n)s pack", "%(n)s packs", line.packs)))
    terms.append(lang.n_("To be renewed %(n)s time", "To be renewed %(n)s times", line.renewals)
                 if line.renewals else lang.t(_("Not renewable")))
    parts.append(Paragraph(text("  ·  ".join(terms)), st["detail"]))
    return KeepTogether(parts)


def _text_line(number: int, line: TextLine, st) -> Flowable:
    return Paragraph(f"{number}.&nbsp;&nbsp;{text(line.text)}", st["line"])


def _lines(lines, start: int, lang: Language, st) -> list[Flowable]:
    return [_drug_line(n, line, lang, st) if isinstance(line, DrugLine) else _text_line(n, line, st)
            for n, line in enumerate(lines, start=start)]


def _prescription(doc: Prescription, profile: Profile, lang: Language, st) -> list[Flowable]:
    story = patient_block(doc.patient, doc.date, lang, st)
    if not doc.bizone:
        story += _lines(doc.lines, 1, lang, st)
    else:  # the ALD form's two zones: related to the long-term condition above, unrelated below
        related = [line for line in doc.lines if line.ald]
        unrelated = [line for line in doc.lines if not line.ald]
        story.append(Paragraph(text(lang.t(_(
            "Prescriptions related to the treatment of the recognised long-term condition "
            "(ALD, on or off the list): EXEMPTED CONDITION"))), st["zone"]))
        story += _lines(related, 1, lang, st) or [Paragraph("—", st["line"])]
        story += [Spacer(1, 8), HRFlowable(width="100%", thickness=1.6, color=INK, spaceAfter=2),
                  CondPageBreak(80)]
        story.append(Paragraph(text(lang.t(_(
            "Prescriptions NOT RELATED to the long-term condition: INTERCURRENT ILLNESSES"))), st["zone"]))
        story += _lines(unrelated, len(related) + 1, lang, st) or [Paragraph("—", st["line"])]
    story += [Spacer(1, 18), signature_block(profile, lang, st, doc.date, place_date=False)]
    return story


def _section(title: str, body: str, st) -> list[Flowable]:
    return [Paragraph(text(title), st["heading"]), Paragraph(text(body), st["body"])]


def _report(doc: Report, profile: Profile, lang: Language, st) -> list[Flowable]:
    story = patient_block(doc.patient, doc.date, lang, st)
    story.append(Paragraph(text(lang.t(_(
        "Consultation held by video (teleconsultation) on %(date)s at %(time)s."),
        date=lang.long_date(doc.held_at.date()), time=lang.time(doc.held_at))), st["body"]))
    story += _section(lang.t(_("Reason for the consultation")), doc.reason, st)
    story += _section(lang.t(_("Findings")), doc.findings, st)
    story += _section(lang.t(_("Conclusion")), doc.conclusion, st)
    if doc.follow_up:
        story += _section(lang.t(_("Follow-up")), doc.follow_up, st)
    story += [Spacer(1, 18), signature_block(profile, lang, st, doc.date)]
    return story


def _patient_name(patient: Patient) -> str:
    return f"{patient.last_name.upper()} {patient.first_names}"


def _certificate(doc: Certificate, profile: Profile, lang: Language, st) -> list[Flowable]:
    opening = lang.t(_(
        "I, the undersigned, %(name)s, %(qualification)s, certify that I examined %(patient)s, "
        "born on %(birth)s, today by teleconsultation (video)."),
        name=profile.name, qualification=profile.qualification, patient=_patient_name(doc.patient),
        birth=lang.short_date(doc.patient.birth_date))
    return [Spacer(1, 6), Paragraph(text(opening), st["body"]), Spacer(1, 8),
            Paragraph(text(doc.text), st["body"]), Spacer(1, 8),
            Paragraph(text(lang.t(_(
                "Certificate drawn up at the request of the person concerned and handed to them in person, "
                "electronically during the teleconsultation, for whatever purpose it may lawfully serve."))),
                st["body"]),
            Spacer(1, 18), signature_block(profile, lang, st, doc.date)]


def _receipt(doc: Receipt, profile: Profile, lang: Language, st) -> list[Flowable]:
    amount = lang.money(doc.amount, doc.currency)
    story: list[Flowable] = []
    if doc.number:
        story.append(Paragraph(text(lang.t(_("Receipt number: %(number)s"), number=doc.number)), st["body"]))
    story.append(Paragraph(text(lang.t(_(
        "I, the undersigned, %(name)s, acknowledge receipt from %(patient)s of the sum of %(amount)s "
        "in payment of the fees below."), name=profile.name, patient=_patient_name(doc.patient),
        amount=amount)), st["body"]))
    rows = [
        (lang.t(_("Date of the act")), lang.short_date(doc.date)),
        (lang.t(_("Act code")), doc.act_code),
        (lang.t(_("Act")), doc.act_label or lang.t(_("Teleconsultation"))),
        (lang.t(_("Amount")), amount),
        (lang.t(_("Payment mode")), lang.t(_PAYMENT[doc.payment_mode])),
        (lang.t(_("Paid on")), lang.short_date(doc.paid_on)),
    ]
    grid = table([[Paragraph(text(k), st["body"]), Paragraph(text(v), st["body"])] for k, v in rows],
                 [CONTENT_WIDTH * 0.35, CONTENT_WIDTH * 0.65],
                 [("GRID", (0, 0), (-1, -1), 0.5, INK), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    story += [Spacer(1, 8), grid, Spacer(1, 8),
              Paragraph(text(lang.t(_("Act performed by teleconsultation (video)."))), st["body"]),
              Spacer(1, 18), signature_block(profile, lang, st, doc.date)]
    return story


_BODIES = {Prescription: _prescription, Report: _report, Certificate: _certificate, Receipt: _receipt}
