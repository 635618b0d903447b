"""Guards on static/js: one module owns the consultation secrets and the browser's storage, one
place does base64url, and page scripts stay small (tests/test_live_pages_browser.py checks the
secrets module's behaviour: logout forgets them)."""

import re
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "static" / "js"
SECRETS_MODULE = "consultation_secrets.js"
STORAGE = re.compile(r"\b(localStorage|sessionStorage|indexedDB|caches|document\.cookie)\b")
BASE64 = re.compile(r"\b(btoa|atob)\s*\(")


def _scripts() -> dict[str, str]:
    found = {p.name: p.read_text(encoding="utf-8") for p in sorted(JS.glob("*.js"))}
    assert SECRETS_MODULE in found and "dashboard.js" in found
    return found


def test_only_the_consultation_secrets_module_touches_the_browsers_storage():
    scripts = _scripts()
    assert STORAGE.search(scripts[SECRETS_MODULE]), "the secrets module is where storage is used"
    elsewhere = {name: STORAGE.findall(text) for name, text in scripts.items() if name != SECRETS_MODULE}
    assert {name: uses for name, uses in elsewhere.items() if uses} == {}


def test_pages_that_hold_a_consultation_secret_read_it_through_the_secrets_module():
    scripts = _scripts()
    for name in ("dashboard.js", "documents.js", "logout.js"):
        assert './consultation_secrets.js"' in scripts[name], name


def test_base64url_is_written_once_in_the_ece_module():
    users = {name for name, text in _scripts().items() if BASE64.search(text)}
    assert users == {"ece.js"}


def test_page_scripts_stay_under_400_lines_the_ece_module_being_one_concern():
    too_long = {name: text.count("\n") for name, text in _scripts().items()
                if name != "ece.js" and text.count("\n") > 400}
    assert too_long == {}
