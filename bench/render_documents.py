#!/usr/bin/env python
"""Rendering documents: milliseconds to render a one-page and a five-page prescription beside
an empty reportlab page, measured in the same run, in the same process, on one pinned core.

* baseline: `reportlab.pdfgen.canvas.Canvas` into a BytesIO, one showPage, save: what any
  reportlab PDF costs before it holds anything;
* one page: a prescription of 5 drug lines with the prescriber's logo and signature, the
  path `renderDocument` and the call panel take (teleconsult.documents.render.render_pdf:
  TrueType subsets embedded, Paragraph layout, two passes for "page n/total");
* five pages: the same with enough lines to fill five pages (the count is found at start-up).

The three are run round-robin (--runs rounds after --warmup rounds), so that any slowdown of
the machine touches all three alike. Ratios = median of a document / median of the empty page.

    .venv/bin/python bench/render_documents.py [--runs 200] [--warmup 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from cores import CLIENT_CORE, pin_to  # noqa: E402  (bench/ is sys.path[0])

from PIL import Image, ImageDraw
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from teleconsult.documents.forms import parse_document
from teleconsult.documents.profile import ImageLimits, Profile, clean_image
from teleconsult.documents.render import render_pdf

TODAY = date(2026, 11, 23)
LIMITS = ImageLimits(2 * 1024 * 1024, 12_000_000)


def _image(fmt: str, size: tuple[int, int]) -> bytes:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).line((10, size[1] - 10, size[0] // 2, 10, size[0] - 10, size[1] // 2), fill="navy", width=6)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def sample_profile() -> Profile:
    return Profile("bench", name="Dr Hélène Œuvray-Çelik", qualification="Médecin généraliste", rpps="10001234567",
                   address="12 rue de l’Église\n75011 Paris", phone="+33 1 23 45 67 89", email="h@example.org",
                   logo=clean_image("logo", _image("JPEG", (600, 400)), LIMITS),
                   signature=clean_image("signature", _image("PNG", (800, 300)), LIMITS))


def prescription(lines: int):
    return parse_document({
        "template": "prescription",
        "patient": {"last_name": "Lefèvre-Noël", "first_names": "Zoé", "sex": "F", "birth_date": "1980-03-12"},
        "lines": [{"drug": f"Amoxicilline {n}", "dosage": "1 g", "form": "comprimé",
                   "directions": "1 comprimé matin et soir au milieu du repas", "duration": "7 jours",
                   "renewals": n % 3} for n in range(1, lines + 1)],
    }, today=TODAY)


def empty_page() -> bytes:
    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def lines_for(target: int, profile: Profile) -> int:
    """The fewest lines that make a prescription of `target` pages."""
    n = 1
    while pages(render_pdf(prescription(n), profile)) < target:
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", help="write the figures to this file too")
    args = parser.parse_args()
    pinned = pin_to(CLIENT_CORE)
    profile = sample_profile()
    five_lines = lines_for(5, profile)
    cases = {
        "empty reportlab page": empty_page,
        "prescription, 1 page (5 lines)": lambda doc=prescription(5): render_pdf(doc, profile),
        f"prescription, 5 pages ({five_lines} lines)": lambda doc=prescription(five_lines): render_pdf(doc, profile),
    }
    sizes = {name: len(run()) for name, run in cases.items()}
    assert [pages(run()) for run in cases.values()] == [1, 1, 5]
    timings: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    for round_ in range(args.warmup + args.runs):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            elapsed = (time.perf_counter() - start) * 1000
            if round_ >= args.warmup:
                timings[name].append(elapsed)
    base = statistics.median(timings["empty reportlab page"])
    results = []
    print(f"pinned to core {CLIENT_CORE}: {pinned}; {args.runs} runs each after {args.warmup} warm-up rounds")
    print(f"{'case':42} {'median ms':>10} {'p95 ms':>8} {'x empty page':>13} {'PDF KiB':>8}")
    for name, values in timings.items():
        median = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[18]
        results.append({"case": name, "median_ms": round(median, 3), "p95_ms": round(p95, 3),
                        "ratio": round(median / base, 1), "kib": round(sizes[name] / 1024, 1)})
        print(f"{name:42} {median:10.2f} {p95:8.2f} {median / base:13.1f} {sizes[name] / 1024:8.1f}")
    one, five = results[1]["median_ms"], results[2]["median_ms"]
    print(f"five pages / one page: {five / one:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
