"""What the clinician key adds to a login, in this machine's Chromium (issue 13):

- PBKDF2-SHA256 with 600,000 iterations (static/js/sealing.js deriveWrappingKey), the step
  the login page runs before the form is sent;
- the whole chain a new device goes through: derive, unwrap the private key, open one
  sealed consultation secret;
- opening one more sealed secret with the key already unwrapped (per consultation listed);

each as the median of --runs runs, against two baselines measured in the same run: the
same PBKDF2 in Python (OpenSSL, hashlib) and the server's argon2 password check that every
login already pays (teleconsult.accounts' PasswordHasher).

Run: .venv/bin/python bench/sealing_login.py [--runs 20]
Exits non-zero when the median of the whole chain is one second or more.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

from aiohttp import web
from argon2 import PasswordHasher

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from browser import chromium  # noqa: E402

from teleconsult import sealing  # noqa: E402

PASSWORD = "un mot de passe de douze caractères ou plus"
PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title>' \
       '<script type="module" src="/harness.js"></script></head><body></body></html>'
HARNESS = """
import * as sealing from '/static/js/sealing.js';
window.sealing = sealing;
document.documentElement.dataset.ready = 'yes';
"""
MEASURE = """async ([wrapped, publicKey, password, sealed, runs]) => {
  const { sealing } = window;
  const derive = [], chain = [], open = [];
  const ms = () => performance.now();
  for (let i = 0; i < runs; i++) {
    let t = ms();
    await sealing.deriveWrappingKey(password, wrapped.salt, wrapped.iterations);
    derive.push(ms() - t);
    t = ms();
    const wrappingKey = await sealing.deriveWrappingKey(password, wrapped.salt, wrapped.iterations);
    const key = await sealing.unwrapPrivateKey(wrapped, publicKey, wrappingKey);
    await sealing.openSecret(key, sealed[0], 'consultation-0');
    chain.push(ms() - t);
    t = ms();
    await sealing.openSecret(key, sealed[1 + (i % (sealed.length - 1))], 'consultation-' + (1 + (i % (sealed.length - 1))));
    open.push(ms() - t);
  }
  return { derive, chain, open };
}"""


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples)


async def main(runs: int) -> int:
    key = sealing.generate_private_key()
    public = sealing.encode_public_key(key)
    wrapped = sealing.wrap_private_key(key, PASSWORD)
    sealed = [sealing.seal_secret(public, os.urandom(32), f"consultation-{i}") for i in range(11)]

    app = web.Application()
    app.router.add_get("/", lambda r: web.Response(text=PAGE, content_type="text/html"))
    app.router.add_get("/harness.js", lambda r: web.Response(text=HARNESS, content_type="text/javascript"))
    app.router.add_static("/static", ROOT / "static")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.wait_for_function("document.documentElement.dataset.ready === 'yes'")
            browser_version = browser.version
            result = await page.evaluate(MEASURE, [wrapped.as_dict(), public, PASSWORD, sealed, runs])
    finally:
        await runner.cleanup()

    salt = os.urandom(16)
    python_pbkdf2 = []
    for _ in range(runs):
        started = time.perf_counter()
        hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, sealing.DEFAULT_ITERATIONS, 32)
        python_pbkdf2.append((time.perf_counter() - started) * 1000)
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    argon2 = []
    for _ in range(runs):
        started = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        argon2.append((time.perf_counter() - started) * 1000)

    derive, chain, open_one = (median_ms(result[k]) for k in ("derive", "chain", "open"))
    base_pbkdf2, base_argon2 = median_ms(python_pbkdf2), median_ms(argon2)
    print(f"Chromium {browser_version}, {runs} runs each, PBKDF2-SHA256 {sealing.DEFAULT_ITERATIONS} iterations")
    print(f"{'measure':58} {'median':>9} {'max':>9}")
    rows = [
        ("Chromium: derive the wrapping key (PBKDF2)", derive, max(result["derive"])),
        ("Chromium: derive + unwrap + open one sealed secret", chain, max(result["chain"])),
        ("Chromium: open one more sealed secret (key unwrapped)", open_one, max(result["open"])),
        ("baseline: Python hashlib PBKDF2, same parameters", base_pbkdf2, max(python_pbkdf2)),
        ("baseline: server argon2 password check (every login)", base_argon2, max(argon2)),
    ]
    for name, med, worst in rows:
        print(f"{name:58} {med:8.1f}ms {worst:8.1f}ms")
    print(f"ratio Chromium PBKDF2 / Python PBKDF2: {derive / base_pbkdf2:.2f}")
    print(f"ratio whole chain / argon2 check: {chain / base_argon2:.2f}")
    if chain >= 1000:
        print("FAIL: the whole chain takes one second or more")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    sys.exit(asyncio.run(main(parser.parse_args().runs)))
