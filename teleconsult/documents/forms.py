"""The four document templates' fields as plain dataclasses, read from JSON and validated.

`parse_document(data, today=...)` returns a Prescription, Report, Certificate or Receipt, or
raises FormInvalid with every problem found (not only the first), each naming its field
("lines[2].duration") and a reason. Reasons are gettext msgids in English, marked with `_` so
that the catalogue test finds them; `Problem.text(gettext)` translates them when shown.

JSON shape (the API's `renderDocument` body and the call panel's form):
    {"template": "prescription", "lang": "fr", "date": "2026-11-23",
     "patient": {"last_name", "first_names", "sex": "F"|"M"|"X", "birth_date": "YYYY-MM-DD",
                 "weight_kg", "height_cm"},
     "lines": [{"drug", "dosage", "form", "directions", "duration", "packs", "renewals", "ald"}
               or {"text", "ald"}],          # free-text lines: biology, imaging, nursing...
     "bizone": true}                          # ALD two-zone layout; default: any line has ald
    report: "held_at": "YYYY-MM-DDTHH:MM", "reason", "findings", "conclusion", "follow_up"
    certificate: "text"
    receipt: "amount", "currency" (EUR), "act_code", "act_label", "payment_mode", "paid_on", "number"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

from babel.numbers import is_currency

from ..errors import InvalidInput
from .fonts import unprintable

TEMPLATES = ("prescription", "report", "certificate", "receipt")
LANGUAGES = ("fr", "en")
SEXES = ("F", "M", "X")
PAYMENT_MODES = ("card", "transfer", "cheque", "cash", "other")
MAX_LINES = 100
MAX_RENEWALS = 12
SHORT, MEDIUM, LONG = 120, 400, 4000  # characters of one-line names, of a line's fields, of free text
OLDEST_YEARS = 130
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_ACT_CODE = re.compile(r"^[A-Za-z0-9+.\- ]{1,20}$")


def _(message: str) -> str:
    """Marks a msgid for the catalogue; translated when the problem is shown (Problem.text)."""
    return message


@dataclass(frozen=True)
class Problem:
    field: str
    message: str  # an English msgid with %(name)s placeholders
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self, gettext: Callable[[str], str] = lambda m: m) -> str:
        return f"{self.field}: " + gettext(self.message) % dict(self.params)


class FormInvalid(InvalidInput):
    """A document or profile that cannot be rendered; `problems` says each reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        super().__init__("; ".join(p.text() for p in self.problems))

    def messages(self, gettext: Callable[[str], str]) -> list[str]:
        return [p.text(gettext) for p in self.problems]


@dataclass(frozen=True)
class Patient:
    last_name: str
    first_names: str
    sex: str | None = None
    birth_date: date | None = None
    weight_kg: Decimal | None = None
    height_cm: int | None = None


@dataclass(frozen=True)
class DrugLine:
    drug: str
    dosage: str
    directions: str
    duration: str
    packs: int | None = None
    form: str = ""
    renewals: int = 0
    ald: bool = False


@dataclass(frozen=True)
class TextLine:
    """A line of a non-drug prescription (biology, imaging, physiotherapy, nursing...)."""
    text: str
    ald: bool = False


@dataclass(frozen=True)
class Prescription:
    patient: Patient
    lines: tuple[DrugLine | TextLine, ...]
    date: date
    bizone: bool = False
    template = "prescription"


@dataclass(frozen=True)
class Report:
    patient: Patient
    held_at: datetime
    reason: str
    findings: str
    conclusion: str
    follow_up: str
    date: date
    template = "report"


@dataclass(frozen=True)
class Certificate:
    patient: Patient
    text: str
    date: date
    template = "certificate"


@dataclass(frozen=True)
class Receipt:
    patient: Patient
    amount: Decimal
    currency: str
    act_code: str
    act_label: str
    payment_mode: str
    paid_on: date
    number: str
    date: date
    template = "receipt"


Document = Prescription | Report | Certificate | Receipt


class _Reader:
    """Reads one JSON object's fields, collecting problems instead of stopping at the first."""

    def __init__(self, data: Any, path: str, problems: list[Problem], allowed: set[str]):
        self.path = path
        self.problems = problems
        if not isinstance(data, Mapping):
            self.fail("", _("expected an object"))
            data = {}
        self.data = data
        for key in sorted(set(data) - allowed, key=str):
            self.fail(str(key), _("unknown field"))

    def fail(self, key: str, message: str, **params: Any) -> None:
        name = f"{self.path}.{key}" if self.path and key else (self.path or key)
        self.problems.append(Problem(name, message, params))

    def text(self, key: str, *, required: bool, limit: int = SHORT, multiline: bool = False) -> str:
        value = self.data.get(key)
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.fail(key, _("expected text"))
            return ""
        value = value.replace("\r\n", "\n").strip() if multiline else " ".join(value.split())
        if not value:
            if required:
                self.fail(key, _("this field is required"))
            return ""
        if len(value) > limit:
            self.fail(key, _("at most %(n)s characters"), n=limit)
        elif _CONTROL.search(value) or (not multiline and "\n" in value):
            self.fail(key, _("contains a control character"))
        elif (char := unprintable(value)) is not None:
            self.fail(key, _("the character “%(char)s” cannot be printed in a document"), char=char)
        return value

    def number(self, key: str, low: Decimal, high: Decimal, places: int, message: str) -> Decimal | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.fail(key, message, low=low, high=high)
            return None
        try:
            number = Decimal(str(value).strip().replace(",", "."))
        except InvalidOperation:
            number = None
        if (number is None or not number.is_finite() or not low <= number <= high
                or number.as_tuple().exponent < -places):
            self.fail(key, message, low=low, high=high)
            return None
        return number

    def whole(self, key: str, low: int, high: int, message: str, default: int | None = None) -> int | None:
        value = self.data.get(key, default)
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, message, low=low, high=high)
            return default
        return value

    def flag(self, key: str, default: bool | None = False) -> bool | None:
        value = self.data.get(key, default)
        if value is None or isinstance(value, bool):
            return value
        self.fail(key, _("expected true or false"))
        return default

    def day(self, key: str, *, required: bool, today: date, past_only: bool = True) -> date | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.fail(key, _("this field is required"))
            return None
        try:
            if not isinstance(value, str):
                raise ValueError
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            self.fail(key, _("expected a date as YYYY-MM-DD"))
            return None
        if past_only and parsed > today:
            self.fail(key, _("this date is in the future"))
            return None
        return parsed

    def moment(self, key: str, today: date) -> datetime | None:
        value = self.data.get(key)
        if value is None or value == "":
            self.fail(key, _("this field is required"))
            return None
        try:
            if not isinstance(value, str):
                raise ValueError
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            self.fail(key, _("expected a date and time as YYYY-MM-DDTHH:MM"))
            return None
        if parsed.date() > today:
            self.fail(key, _("this date is in the future"))
            return None
        return parsed.replace(tzinfo=None, second=0, microsecond=0)


_PATIENT_FIELDS = {"last_name", "first_names", "sex", "birth_date", "weight_kg", "height_cm"}
_IDENTITY_NEEDS = {  # beyond the names, which every template requires
    "prescription": {"sex", "birth_date"},
    "report": {"birth_date"},
    "certificate": {"birth_date"},
    "receipt": set(),
}


def _patient(data: Any, template: str, today: date, problems: list[Problem]) -> Patient:
    r = _Reader(data, "patient", problems, _PATIENT_FIELDS)
    needs = _IDENTITY_NEEDS[template]
    last_name = r.text("last_name", required=True)
    first_names = r.text("first_names", required=True)
    sex = r.data.get("sex") or None
    if sex is None and "sex" in needs:
        r.fail("sex", _("this field is required"))
    elif sex is not None and sex not in SEXES:
        r.fail("sex", _("expected F, M or X"))
        sex = None
    birth_date = r.day("birth_date", required="birth_date" in needs, today=today)
    if birth_date and birth_date.year < today.year - OLDEST_YEARS:
        r.fail("birth_date", _("more than %(n)s years ago"), n=OLDEST_YEARS)
    weight = r.number("weight_kg", Decimal("0.3"), Decimal("400"), 1,
                      _("a weight in kilograms between %(low)s and %(high)s, one decimal at most"))
    height = r.whole("height_cm", 20, 260, _("a height in whole centimetres between %(low)s and %(high)s"))
    return Patient(last_name, first_names, sex, birth_date, weight, height)


_DRUG_FIELDS = {"drug", "dosage", "form", "directions", "duration", "packs", "renewals", "ald"}


def _line(data: Any, index: int, problems: list[Problem]) -> DrugLine | TextLine:
    path = f"lines[{index}]"
    if isinstance(data, Mapping) and "text" in data:
        r = _Reader(data, path, problems, {"text", "ald"})
        return TextLine(r.text("text", required=True, limit=LONG, multiline=True), bool(r.flag("ald")))
    r = _Reader(data, path, problems, _DRUG_FIELDS)
    drug = r.text("drug", required=True, limit=MEDIUM)
    dosage = r.text("dosage", required=True, limit=MEDIUM)
    form = r.text("form", required=False, limit=SHORT)
    directions = r.text("directions", required=True, limit=MEDIUM)
    packs = r.whole("packs", 1, 99, _("a number of packs between %(low)s and %(high)s"))
    duration = r.text("duration", required=False, limit=SHORT)
    if not duration and packs is None and not any(p.field == f"{path}.duration" for p in problems):
        r.fail("duration", _("give the duration of the treatment (or the number of packs)"))
    renewals = r.whole("renewals", 0, MAX_RENEWALS, _("a number of renewals between %(low)s and %(high)s"), 0)
    return DrugLine(drug, dosage, directions, duration, packs, form, renewals or 0, bool(r.flag("ald")))


_COMMON = {"template", "lang", "date", "patient"}
_FIELDS = {
    "prescription": _COMMON | {"lines", "bizone"},
    "report": _COMMON | {"held_at", "reason", "findings", "conclusion", "follow_up"},
    "certificate": _COMMON | {"text"},
    "receipt": _COMMON | {"amount", "currency", "act_code", "act_label", "payment_mode", "paid_on", "number"},
}


def parse_language(value: Any) -> str:
    """The document's language: French by default, English second."""
    if value is None or value == "":
        return LANGUAGES[0]
    if value not in LANGUAGES:
        raise FormInvalid([Problem("lang", _("expected fr or en"))])
    return value


def parse_document(data: Any, *, today: date) -> Document:
    """Read and validate one document; raise FormInvalid listing every problem."""
    problems: list[Problem] = []
    template = data.get("template") if isinstance(data, Mapping) else None
    if template not in TEMPLATES:
        raise FormInvalid([Problem("template", _("expected prescription, report, certificate or receipt"))])
    r = _Reader(data, "", problems, _FIELDS[template])
    if "lang" in r.data:
        try:
            parse_language(r.data["lang"])
        except FormInvalid as exc:
            problems.extend(exc.problems)
    patient = _patient(r.data.get("patient"), template, today, problems)
    day = r.day("date", required=False, today=today) or today
    document: Document | None = None
    if template == "prescription":
        document = _prescription(r, patient, day, problems)
    elif template == "report":
        document = Report(patient, r.moment("held_at", today), r.text("reason", required=True, limit=LONG, multiline=True),
                          r.text("findings", required=True, limit=LONG, multiline=True),
                          r.text("conclusion", required=True, limit=LONG, multiline=True),
                          r.text("follow_up", required=False, limit=LONG, multiline=True), day)
    elif template == "certificate":
        document = Certificate(patient, r.text("text", required=True, limit=LONG, multiline=True), day)
    else:
        document = _receipt(r, patient, day, today)
    if problems:
        raise FormInvalid(problems)
    return document


def _prescription(r: _Reader, patient: Patient, day: date, problems: list[Problem]) -> Prescription:
    raw = r.data.get("lines")
    if not isinstance(raw, list) or not raw:
        r.fail("lines", _("a prescription needs at least one line"))
        raw = []
    elif len(raw) > MAX_LINES:
        r.fail("lines", _("at most %(n)s lines"), n=MAX_LINES)
        raw = []
    lines = tuple(_line(item, i, problems) for i, item in enumerate(raw, start=1))
    bizone = r.flag("bizone", default=None)
    if bizone is None:
        bizone = any(line.ald for line in lines)
    elif not bizone and any(line.ald for line in lines):
        r.fail("bizone", _("a line is marked as related to the long-term condition (ald): "
                           "choose the two-zone layout"))
    return Prescription(patient, lines, day, bizone)


def _receipt(r: _Reader, patient: Patient, day: date, today: date) -> Receipt:
    amount = r.number("amount", Decimal("0.01"), Decimal("99999.99"), 2,
                      _("an amount between %(low)s and %(high)s, two decimals at most"))
    if amount is None and "amount" not in r.data:
        r.fail("amount", _("this field is required"))
    currency = r.data.get("currency") or "EUR"
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency) or not is_currency(currency):
        r.fail("currency", _("expected a currency code such as EUR"))
        currency = "EUR"
    act_code = r.text("act_code", required=True, limit=20)
    if act_code and not _ACT_CODE.match(act_code):
        r.fail("act_code", _("letters, digits, spaces, + . - only"))
    act_label = r.text("act_label", required=False, limit=MEDIUM)
    mode = r.data.get("payment_mode")
    if mode not in PAYMENT_MODES:
        r.fail("payment_mode", _("expected card, transfer, cheque, cash or other"))
    paid_on = r.day("paid_on", required=False, today=today) or day
    number = r.text("number", required=False, limit=40)
    return Receipt(patient, amount or Decimal(0), currency, act_code, act_label, mode or "", paid_on, number, day)
