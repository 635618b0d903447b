"""What every document shares: the A4 page, the prescriber block at the top of every page,
"page 1/2" at the foot when a document runs over a page, the signature, styles, dates and
numbers in the document's language, and the PDF's metadata (title and author = the
prescriber; never anything about the patient).

Everything is built in memory (BytesIO); nothing is written to disk.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Callable
from xml.sax.saxutils import escape

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfgen import canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, Image, KeepTogether, PageTemplate, Paragraph, Table
from reportlab.platypus import TableStyle

from . import fonts
from .forms import _
from .profile import Profile, ProfileImage

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 1.8 * cm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
LOCALES = {"fr": "fr_FR", "en": "en_GB"}
LOGO_BOX = (3.5 * cm, 2.4 * cm)
SIGNATURE_BOX = (5.5 * cm, 2.6 * cm)
INK = colors.HexColor("#1a1a1a")
GREY = colors.HexColor("#555555")


@dataclass(frozen=True)
class Language:
    """gettext, ngettext and babel's formats for one language."""
    code: str
    translations: NullTranslations

    def t(self, message: str, **params) -> str:
        text = self.translations.gettext(message)
        return text % params if params else text

    def n_(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n) % {"n": n}

    @property
    def locale(self) -> str:
        return LOCALES[self.code]

    def long_date(self, day: date) -> str:
        return format_date(day, "long", locale=self.locale)  # 23 novembre 2026

    def short_date(self, day: date) -> str:
        return format_date(day, "dd/MM/yyyy", locale=self.locale)  # 23/11/2026

    def time(self, moment: datetime) -> str:
        return format_time(moment, "HH:mm", locale=self.locale)

    def decimal(self, value: Decimal) -> str:
        return fonts.normalise(format_decimal(value, locale=self.locale))

    def money(self, value: Decimal, currency: str) -> str:
        return fonts.normalise(format_currency(value, currency, locale=self.locale))


def text(value: str) -> str:
    """User text as Paragraph markup: escaped (no tag of the user's is interpreted), line breaks kept."""
    return escape(fonts.normalise(value)).replace("\n", "<br/>")


def styles() -> dict[str, ParagraphStyle]:
    family = fonts.register()
    body = ParagraphStyle("body", fontName=family, fontSize=10, leading=13.5, textColor=INK)
    return {
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=8.5, leading=11, textColor=GREY),
        "name": ParagraphStyle("name", parent=body, fontName=fonts.BOLD, fontSize=12.5, leading=15.5),
        "title": ParagraphStyle("title", parent=body, fontName=fonts.BOLD, fontSize=15, leading=19,
                                spaceBefore=4, spaceAfter=8),
        "heading": ParagraphStyle("heading", parent=body, fontName=fonts.BOLD, fontSize=10.5,
                                  spaceBefore=8, spaceAfter=3),
        "right": ParagraphStyle("right", parent=body, alignment=TA_RIGHT),
        "line": ParagraphStyle("line", parent=body, leftIndent=20, firstLineIndent=-20, spaceBefore=5),
        "detail": ParagraphStyle("detail", parent=body, leftIndent=20, textColor=GREY),
        "zone": ParagraphStyle("zone", parent=body, fontName=fonts.BOLD, fontSize=9, leading=12,
                               backColor=colors.HexColor("#eeeeee"), borderColor=INK, borderWidth=0.6,
                               borderPadding=4, spaceBefore=10, spaceAfter=6),
    }


def table(rows: list, widths: list[float], style: list[tuple]) -> Table:
    """A Table whose cells use our font (reportlab's default cell font, Helvetica, would be
    named on the page without being embedded)."""
    flowable = Table(rows, colWidths=widths)
    flowable.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), fonts.REGULAR), *style]))
    return flowable


def image_flowable(image: ProfileImage, box: tuple[float, float], align: str) -> Image:
    scale = min(box[0] / image.width, box[1] / image.height)
    flowable = Image(io.BytesIO(image.data), width=image.width * scale, height=image.height * scale)
    flowable.hAlign = align
    return flowable


def prescriber_block(profile: Profile, lang: Language, st: dict[str, ParagraphStyle]) -> Table:
    """Name, qualification, identifier, address, phone, email (and the logo), as on a paper pad."""
    kind = profile.identifier_kind
    lines = [Paragraph(text(profile.name), st["name"])]
    if profile.qualification:
        lines.append(Paragraph(text(profile.qualification), st["body"]))
    if profile.rpps:
        label = f"{kind} " if kind else lang.t(_("Identifier: "))
        lines.append(Paragraph(text(label + profile.rpps), st["body"]))
    if profile.address:
        lines.append(Paragraph(text(profile.address), st["body"]))
    contact = [lang.t(_("Phone: %(phone)s"), phone=profile.phone) if profile.phone else "", profile.email]
    if any(contact):
        lines.append(Paragraph(text("  ·  ".join(c for c in contact if c)), st["body"]))
    logo = image_flowable(profile.logo, LOGO_BOX, "RIGHT") if profile.logo else ""
    return table([[lines, logo]], [CONTENT_WIDTH - LOGO_BOX[0], LOGO_BOX[0]], [
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ])


def signature_block(profile: Profile, lang: Language, st, day: date, place_date: bool = True) -> Flowable:
    parts: list[Flowable] = []
    if place_date:
        parts.append(Paragraph(text(lang.t(_("Done on %(date)s"), date=lang.long_date(day))), st["right"]))
    if profile.signature:
        parts.append(image_flowable(profile.signature, SIGNATURE_BOX, "RIGHT"))
    parts.append(Paragraph(text(profile.name), st["right"]))
    return KeepTogether(parts)


def _numbered_canvas(label: Callable[[int, int], str]):
    """A canvas that draws "page n/total" once the total is known (the classic reportlab recipe:
    pages are kept until save). Nothing is drawn on a one-page document."""

    class NumberedCanvas(canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                if total > 1:
                    self.setFont(fonts.REGULAR, 8.5)
                    self.setFillColor(GREY)
                    self.drawRightString(PAGE_WIDTH - MARGIN, MARGIN / 2, label(number, total))
                super().showPage()
            super().save()

    return NumberedCanvas


def build(story: list[Flowable], *, profile: Profile, lang: Language, title: str, running: str) -> bytes:
    """Lay `story` out on A4 pages under the prescriber block; `running` is the line that heads
    every page after the first (document, patient, date) so that a loose page is identified."""
    st = styles()
    header = prescriber_block(profile, lang, st)
    _width, header_height = header.wrap(CONTENT_WIDTH, PAGE_HEIGHT)
    running_par = Paragraph(text(running), st["small"])
    _width, running_height = running_par.wrap(CONTENT_WIDTH, PAGE_HEIGHT)
    top = PAGE_HEIGHT - MARGIN - header_height - running_height - 8
    frame = Frame(MARGIN, MARGIN, CONTENT_WIDTH, top - MARGIN, id="body", leftPadding=0, rightPadding=0,
                  topPadding=0, bottomPadding=0)

    def on_page(pdf: canvas.Canvas, doc) -> None:
        header.drawOn(pdf, MARGIN, PAGE_HEIGHT - MARGIN - header_height)
        if doc.page > 1:
            running_par.drawOn(pdf, MARGIN, PAGE_HEIGHT - MARGIN - header_height - running_height - 4)

    out = io.BytesIO()
    doc = BaseDocTemplate(out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                          bottomMargin=MARGIN, title=title, author=profile.name, subject=title,
                          creator="teleconsult", lang=lang.code, displayDocTitle=True,
                          # our font from the first operator on: no page names a font left unembedded
                          initialFontName=fonts.REGULAR, initialFontSize=10)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=on_page)])
    label = lambda n, total: lang.t(_("page %(n)s/%(total)s"), n=n, total=total)  # noqa: E731
    doc.build(story, canvasmaker=_numbered_canvas(label))
    return out.getvalue()
