"""The clinician key on the server (issue 13): what login, the API, the dashboard, the account
page and the CLI do with it, over real HTTP on loopback and a real SQLite database. The crypto
itself is tests/test_sealing.py; the browsers' side, tests/test_clinician_keys_browser.py."""

import asyncio
import json
import os

import pyotp
import sqlalchemy as sa

from filedrop.ece import b64url_decode
from teleconsult import accounts, clinician_keys, ids, sealing
from teleconsult.db_tables import clinicians, consultations
import postgres_cluster
from conftest import PASSWORD, add_api_clinician, add_clinician, csrf_from, login
from test_accounts import TELECONSULT, Run, clinician_cli, next_code
from conftest import TEST_JITSI_SECRET, TEST_SECRET


async def teleconsult_cli(app, *args: str) -> Run:
    """`teleconsult ...` on the live app's data directory (a subprocess, as in test_accounts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(app.settings.data_dir))
    env.update({"TELECONSULT_SESSION_SECRET": TEST_SECRET, "TELECONSULT_JITSI_DOMAIN": "meet.example.org",
                "TELECONSULT_JITSI_APP_ID": "tc", "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET,
                "TELECONSULT_PUBLIC_URL": app.url})
    process = await asyncio.create_subprocess_exec(
        TELECONSULT, *args, "--data-dir", str(app.settings.data_dir), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return Run(process.returncode, out.decode(), err.decode())


async def give_key(engine, clinician, password=PASSWORD):
    """What a browser does at a clinician's first login: a key pair wrapped under the password."""
    private_key = sealing.generate_private_key()
    public_key = sealing.encode_public_key(private_key)
    assert await clinician_keys.adopt_key(engine, clinician.id, public_key,
                                          sealing.wrap_private_key(private_key, password))
    return private_key, public_key


async def stored_key(engine, clinician_id):
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(clinicians).where(clinicians.c.id == clinician_id))).one()


async def key_parameters(client, base, email):
    async with client.get(base + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(base + "/login/key", json={"email": email}, headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_key_parameters_have_one_shape_for_any_email_and_give_a_keyed_clinicians_own_salt(live, http):
    app = await live()
    keyless = await add_clinician(app.engine, "keyless@example.org")
    keyed = await add_clinician(app.engine, "keyed@example.org")
    await give_key(app.engine, keyed)
    client = http()
    unknown = await key_parameters(client, app.url, "nobody@example.org")
    assert unknown == await key_parameters(client, app.url, "Nobody@Example.org ")  # stable per email
    assert unknown["iterations"] == 600_000 and len(b64url_decode(unknown["salt"])) == 16
    without_key = await key_parameters(client, app.url, keyless.email)
    assert set(without_key) == set(unknown) == {"salt", "iterations"}
    assert without_key["salt"] != unknown["salt"]
    row = await stored_key(app.engine, keyed.id)
    assert await key_parameters(client, app.url, keyed.email) == {"salt": row.key_salt, "iterations": row.key_iterations}


async def test_key_parameters_refuse_a_body_without_an_email(live, http):
    app = await live()
    client = http()
    async with client.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    for body in ({}, {"email": ""}, {"email": 3}, [], {"email": "x" * 400}):
        async with client.post(app.url + "/login/key", json=body,
                               headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as r:
            assert r.status == 400 and "email" in (await r.json())["error"]
    async with client.post(app.url + "/login/key", data=b"not json",
                           headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as r:
        assert r.status == 400 and "JSON" in (await r.json())["error"]


def proposal(password=PASSWORD):
    private_key = sealing.generate_private_key()
    public_key = sealing.encode_public_key(private_key)
    return public_key, json.dumps(sealing.wrap_private_key(private_key, password).as_dict())


async def login_with_proposal(client, base, clinician, public_key, wrapped, second_factor=True, code=None):
    async with client.get(base + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(base + "/login", data={
            "email": clinician.email, "password": clinician.password, "csrf_token": csrf,
            "new_public_key": public_key, "new_wrapped_key": wrapped}) as r:
        assert r.url.path == "/login/totp"
        csrf = csrf_from(await r.text())
    if second_factor:
        async with client.post(base + "/login/totp", data={
                "code": code or pyotp.TOTP(clinician.totp_secret).now(), "csrf_token": csrf}) as r:
            assert r.url.path == "/"


async def test_a_key_made_at_login_is_kept_only_after_the_second_factor_and_never_replaces_one(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    first = proposal()
    await login_with_proposal(http(), app.url, doctor, *first, second_factor=False)
    assert (await stored_key(app.engine, doctor.id)).public_key is None  # the password alone is not enough
    await login_with_proposal(http(), app.url, doctor, *first)
    row = await stored_key(app.engine, doctor.id)
    assert row.public_key == first[0] and row.wrapped_key == json.loads(first[1])["wrapped"]
    await login_with_proposal(http(), app.url, doctor, *proposal(), code=next_code(doctor))
    assert (await stored_key(app.engine, doctor.id)).public_key == first[0]


async def test_a_malformed_key_at_login_is_ignored_and_the_login_goes_on(live, http):
    app = await live()
    public_key, wrapped = proposal()
    for n, (bad_key, bad_wrapped) in enumerate((
            ("pk.v1.AAAA", wrapped), (public_key, "{"), (public_key, '{"iterations": 1}'),
            (public_key, json.dumps(json.loads(wrapped) | {"iterations": 100})))):
        doctor = await add_clinician(app.engine, f"doctor{n}@example.org")  # one login each (TOTP replay)
        await login_with_proposal(http(), app.url, doctor, bad_key, bad_wrapped)
        assert (await stored_key(app.engine, doctor.id)).public_key is None


async def test_an_integrator_seals_the_secret_for_an_id_and_every_reading_hands_it_back(live, http):
    app = await live()
    doctor, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    async with client.get(app.url + "/api/clinician/key", headers=auth) as r:
        assert r.status == 404 and "next login" in (await r.json())["error"]
    private_key, public_key = await give_key(app.engine, doctor)
    async with client.get(app.url + "/api/clinician/key", headers=auth) as r:
        key = await r.json()
    assert key == {"public_key": public_key, "key_id": sealing.key_id(public_key)}

    secret, consultation_id = os.urandom(32), ids.new_id()
    sealed = sealing.seal_secret(key["public_key"], secret, consultation_id)
    async with client.post(app.url + "/api/consultations", headers=auth,
                           json={"id": consultation_id, "sealed_secret": sealed}) as r:
        assert r.status == 201
        created = await r.json()
    assert created["id"] == consultation_id and created["sealed_secret"] == sealed
    async with client.get(app.url + f"/api/consultations/{consultation_id}", headers=auth) as r:
        assert (await r.json())["sealed_secret"] == sealed
    async with client.get(app.url + "/api/consultations", headers=auth) as r:
        listed = (await r.json())["consultations"]
    assert [c["sealed_secret"] for c in listed if c["id"] == consultation_id] == [sealed]
    assert sealing.open_secret(private_key, sealed, consultation_id) == secret
    async with app.engine.connect() as conn:
        assert await conn.scalar(sa.select(consultations.c.sealed_to).where(
            consultations.c.id == consultation_id)) == key["key_id"]


async def test_create_consultation_refuses_what_would_leave_the_secret_unopenable(live, http):
    app = await live()
    doctor, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    consultation_id = ids.new_id()
    sealed = sealing.seal_secret(sealing.encode_public_key(sealing.generate_private_key()), bytes(32), consultation_id)

    async def create(**kwargs):
        async with client.post(app.url + "/api/consultations", headers=auth, **kwargs) as r:
            return r.status, (await r.json()).get("error", "")

    assert await create(json={"id": consultation_id, "sealed_secret": sealed}) == (
        409, "this clinician has no key yet: it is made at their next login in a browser")
    await give_key(app.engine, doctor)
    cases = [
        (dict(data=b"{"), 400, "not JSON"),
        (dict(json={"id": consultation_id}), 400, "go together"),
        (dict(json={"sealed_secret": sealed}), 400, "go together"),
        (dict(json={"id": consultation_id, "sealed_secret": sealed, "x": 1}), 400, "or empty"),
        (dict(json={"id": consultation_id, "sealed_secret": "sealed.v1.AAAA"}), 400, "113 bytes"),
        (dict(json={"id": consultation_id, "sealed_secret": sealed.replace(".v1.", ".v2.")}), 400, "unknown version"),
        (dict(json={"id": "short", "sealed_secret": sealed}), 400, "16 to 64 characters"),
        (dict(json={"id": "x" * 20 + "/", "sealed_secret": sealed}), 400, "16 to 64 characters"),
    ]
    for kwargs, status, message in cases:
        got_status, error = await create(**kwargs)
        assert got_status == status and message in error, (kwargs, got_status, error)
    assert (await create(json={"id": consultation_id, "sealed_secret": sealed}))[0] == 201
    assert await create(json={"id": consultation_id, "sealed_secret": sealed}) == (
        409, "a consultation with this id already exists")
    assert (await create())[0] == 201  # without a body, as before: the server draws the id


async def test_the_dashboard_says_which_open_consultations_lost_their_key_after_a_host_reset(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    _, public_key = await give_key(app.engine, doctor)
    key_id = sealing.key_id(public_key)
    from teleconsult import consultations as cs
    clinician = await accounts.get_clinician(app.engine, doctor.id)
    sealed_one = await cs.create_consultation(app.engine, app.settings, clinician, consultation_id=ids.new_id(),
                                              sealed_secret=sealing.seal_secret(public_key, bytes(32), "x" * 22),
                                              sealed_to=key_id)
    unsealed = await cs.create_consultation(app.engine, app.settings, clinician)
    client = http()
    await login(client, app.url, doctor)

    async def lost():
        async with client.get(app.url + "/dashboard/state") as r:
            state = await r.json()
        return {c["id"]: c["key_lost"] for c in state["consultations"]}, state["key"]

    flags, key = await lost()
    assert flags == {sealed_one.id: False, unsealed.id: False} and key["key_id"] == key_id
    assert set(key) == {"public_key", "key_id", "wrapped"} and set(key["wrapped"]) == {"iterations", "salt", "wrapped"}

    result = await clinician_cli(app, "password", doctor.email, stdin="a host-chosen new password\n")
    assert result.returncode == 0, result.stderr
    assert (await stored_key(app.engine, doctor.id)).public_key is None
    doctor.password = "a host-chosen new password"
    client = http()
    await login(client, app.url, doctor, code=next_code(doctor))
    flags, key = await lost()
    assert flags == {sealed_one.id: True, unsealed.id: False} and key is None


async def test_a_password_change_needs_the_key_rewrapped_and_keeps_it_openable(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    private_key, public_key = await give_key(app.engine, doctor)
    client = http()
    csrf = await login(client, app.url, doctor)
    new_password = "a brand new password here"
    form = {"csrf_token": csrf, "current_password": PASSWORD, "new_password": new_password,
            "confirm_password": new_password}
    async with client.post(app.url + "/account/password", data=form) as r:
        assert r.status == 400 and "rechiffrer votre clé des documents" in await r.text()
    assert await accounts.verify_password(app.engine, doctor.email, PASSWORD)  # unchanged
    before = await stored_key(app.engine, doctor.id)
    stored = sealing.WrappedKey(before.key_iterations, before.key_salt, before.wrapped_key)
    rewrapped = sealing.rewrap_private_key(stored, public_key, PASSWORD, new_password)
    async with client.post(app.url + "/account/password",
                           data=form | {"new_wrapped_key": json.dumps(rewrapped.as_dict())}) as r:
        assert r.status == 200 and "Votre mot de passe a été changé" in await r.text()
    after = await stored_key(app.engine, doctor.id)
    assert after.public_key == public_key and after.key_salt == rewrapped.salt != before.key_salt
    again = sealing.WrappedKey(after.key_iterations, after.key_salt, after.wrapped_key)
    assert sealing.private_key_bytes(sealing.unwrap_private_key(again, public_key, new_password)) == \
        sealing.private_key_bytes(private_key)


async def test_the_cli_seals_the_secret_of_the_link_it_prints_when_the_clinician_has_a_key(live):
    app = await live()
    doctor = await add_clinician(app.engine)
    private_key, _ = await give_key(app.engine, doctor)
    result = await teleconsult_cli(app, "consultation", "new", "--clinician", doctor.email)
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip()
    secret = b64url_decode(link.split("#", 1)[1])
    async with app.engine.connect() as conn:
        row = (await conn.execute(sa.select(consultations).where(
            consultations.c.join_token == link.split("/j/")[1].split("#")[0]))).one()
    assert sealing.open_secret(private_key, row.sealed_secret, row.id) == secret


async def test_logging_out_tells_the_browser_to_forget_its_stored_keys(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    client = http()
    csrf = await login(client, app.url, doctor)
    async with client.post(app.url + "/logout", data={"csrf_token": csrf}, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Clear-Site-Data"] == '"storage"'


async def test_a_browser_that_still_caches_a_secret_seals_it_again_to_the_new_key(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    _, old_key = await give_key(app.engine, doctor)
    from teleconsult import consultations as cs
    clinician = await accounts.get_clinician(app.engine, doctor.id)
    secret, consultation_id = os.urandom(32), ids.new_id()
    await cs.create_consultation(app.engine, app.settings, clinician, consultation_id=consultation_id,
                                 sealed_secret=sealing.seal_secret(old_key, secret, consultation_id),
                                 sealed_to=sealing.key_id(old_key))
    ended = await cs.create_consultation(app.engine, app.settings, clinician)
    await accounts.set_password(app.engine, doctor.email, "the host's new password")
    doctor.password = "the host's new password"
    new_private, new_key = await give_key(app.engine, doctor, doctor.password)
    client = http()
    csrf = await login(client, app.url, doctor)
    url = app.url + f"/consultations/{consultation_id}/sealed-secret"
    headers = {"X-CSRF-Token": csrf, "Accept": "application/json"}
    resealed = sealing.seal_secret(new_key, secret, consultation_id)

    async def post(body, target=url):
        async with client.post(target, json=body, headers=headers) as r:
            return r.status, await r.json()

    for body in ({}, {"sealed_secret": "sealed.v1.AAAA"}, {"sealed_secret": 3}, []):
        status, answer = await post(body)
        assert status == 400 and "sealed_secret" in answer["error"], body
    status, answer = await post({"sealed_secret": resealed})
    assert status == 200 and answer["sealed_secret"] == resealed
    assert sealing.open_secret(new_private, answer["sealed_secret"], consultation_id) == secret
    async with client.get(app.url + "/dashboard/state") as r:
        assert [c["key_lost"] for c in (await r.json())["consultations"] if c["id"] == consultation_id] == [False]
    # never over a secret sealed to the current key, never for an ended consultation
    assert await post({"sealed_secret": sealing.seal_secret(new_key, os.urandom(32), consultation_id)}) == (
        409, {"error": "the secret of this consultation is already sealed to the current key", "status": 409})
    async with client.post(app.url + f"/consultations/{ended.id}/end", headers=headers) as r:
        assert r.status == 200
    status, answer = await post({"sealed_secret": resealed}, app.url + f"/consultations/{ended.id}/sealed-secret")
    assert status == 409 and "ended" in answer["error"]
