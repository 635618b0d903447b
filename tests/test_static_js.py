"""Guards on static/js: one module owns the consultation secrets (and the browser's storage they
are cached in), one the clinician's keys (IndexedDB: keys only), one place does base64url, and
page scripts stay small (tests/test_live_pages_browser.py checks the secrets module's behaviour:
logout forgets them; tests/test_clinician_keys_browser.py the sealed secrets it opens)."""

import re
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "static" / "js"
SECRETS_MODULE = "consultation_secrets.js"
KEYS_MODULE = "clinician_keys.js"
STORAGE = re.compile(r"\b(localStorage|sessionStorage|indexedDB|caches|document\.cookie)\b")
# the only storage each module may touch: the secrets' cache, the keys' database
ALLOWED_STORAGE = {SECRETS_MODULE: {"localStorage"}, KEYS_MODULE: {"indexedDB"}}
BASE64 = re.compile(r"\b(btoa|atob)\s*\(")


def _scripts() -> dict[str, str]:
    found = {p.name: p.read_text(encoding="utf-8") for p in sorted(JS.glob("*.js"))}
    assert SECRETS_MODULE in found and KEYS_MODULE in found and "dashboard.js" in found
    return found


def test_only_the_secrets_module_touches_local_storage_and_only_the_keys_module_indexeddb():
    used = {name: set(STORAGE.findall(text)) for name, text in _scripts().items()}
    assert used[SECRETS_MODULE] == {"localStorage"}, "the secrets module is where the cache is kept"
    assert used[KEYS_MODULE] == {"indexedDB"}, "the keys module keeps keys, never a secret's cache"
    assert {name: uses - ALLOWED_STORAGE.get(name, set()) for name, uses in used.items()
            if uses - ALLOWED_STORAGE.get(name, set())} == {}


def test_pages_that_hold_a_consultation_secret_read_it_through_the_secrets_module():
    scripts = _scripts()
    for name in ("dashboard.js", "documents.js", "logout.js"):
        assert './consultation_secrets.js"' in scripts[name], name


def test_pages_that_hold_a_consultation_secret_seal_and_open_it_only_through_the_secrets_module():
    """The sealed secrets plug into the secrets module: only it asks the keys module to seal or
    open one; the pages never import the keys or the sealing protocol themselves."""
    scripts = _scripts()
    for name in ("dashboard.js", "documents.js", "logout.js", "call.js", "patient.js"):
        imported = set(re.findall(r'from\s+"\./([\w.]+)"|import\(\s*"\./([\w.]+)"', scripts[name]))
        assert not {"clinician_keys.js", "sealing.js"} & {a or b for a, b in imported}, name
    assert '"./clinician_keys.js"' in scripts[SECRETS_MODULE]


def test_base64url_is_written_once_in_the_ece_format_module():
    users = {name for name, text in _scripts().items() if BASE64.search(text)}
    assert users == {"ece_format.js"}


def test_page_scripts_stay_under_400_lines():
    too_long = {name: text.count("\n") for name, text in _scripts().items() if text.count("\n") > 400}
    assert too_long == {}
