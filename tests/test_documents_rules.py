"""Who may use which drop box, and when, over real HTTP: nothing is sent once a consultation
has ended (through any of its three doors), only an admitted patient and the owning clinician
reach a box, a document only through its own box, standalone drops only with their owner
token and within the host's maximum life; files on disk are private and named safely."""

import asyncio
import os
import secrets
import stat
import time
from pathlib import Path

import pytest

from filedrop import ece
from filedrop.storage import Storage
from conftest import add_api_clinician, csrf_from, login, patient_knocks
from drop_client import upload


async def _api_clinician(app, http, email="doc@example.org"):
    doctor, token = await add_api_clinician(app.engine, email)
    return doctor, http(), {"Authorization": f"Bearer {token}"}


async def _create(app, client, auth) -> dict:
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        assert r.status == 201
        return await r.json()


async def _admitted_patient(app, http, client, auth, consultation):
    patient, csrf = await patient_knocks(http, consultation)
    async with client.get(app.url + f"/api/consultations/{consultation['id']}", headers=auth) as r:
        (knock,) = (await r.json())["knocks"]
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/knocks/{knock['id']}/admit",
                           headers=auth) as r:
        assert r.status == 200
    return patient, csrf


async def _start_upload(client, url, headers) -> str:
    async with client.post(url, json={"size": ece.padded_size(100)}, headers=headers) as r:
        assert r.status == 201, (url, r.status, await r.text())
        return (await r.json())["id"]


async def test_nothing_new_is_sent_once_the_consultation_has_ended_by_any_door(live, http):
    app = await live()
    doctor, api, auth = await _api_clinician(app, http)
    consultation = await _create(app, api, auth)
    dashboard = http()
    csrf = await login(dashboard, app.url, doctor)
    patient, patient_csrf = await _admitted_patient(app, http, api, auth, consultation)
    token = consultation["patient_url"].rsplit("/", 1)[1]
    doors = {  # who: (client, documents prefix, headers)
        "clinician (session)": (dashboard, f"/consultations/{consultation['id']}/documents", {"X-CSRF-Token": csrf}),
        "integrator (API)": (api, f"/api/consultations/{consultation['id']}/documents", auth),
        "patient": (patient, f"/j/{token}/documents", {"X-CSRF-Token": patient_csrf}),
    }
    begun = {who: await _start_upload(client, app.url + prefix, headers)
             for who, (client, prefix, headers) in doors.items()}
    async with api.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200

    for who, (client, prefix, headers) in doors.items():
        async with client.post(app.url + prefix, json={"size": ece.padded_size(100)}, headers=headers) as r:
            assert r.status == 409, f"{who} created a document after the end ({r.status})"
        async with client.patch(f"{app.url}{prefix}/{begun[who]}/upload", data=os.urandom(100),
                                headers={**headers, "Upload-Offset": "0"}) as r:
            assert r.status == 409, f"{who} sent a part after the end ({r.status})"
        async with client.post(f"{app.url}{prefix}/{begun[who]}/complete", data=b"m" * 64, headers=headers) as r:
            assert r.status == 409, f"{who} published a document after the end ({r.status})"
        async with client.get(app.url + prefix, headers=headers) as r:
            assert r.status == 200, f"{who} can no longer read the list until the deletion ({r.status})"


async def test_a_patient_who_was_never_admitted_cannot_reach_the_documents(live, http):
    app = await live()
    _, api, auth = await _api_clinician(app, http)
    consultation = await _create(app, api, auth)
    patient, csrf = await patient_knocks(http, consultation)  # waiting, never admitted
    prefix = app.url + "/j/" + consultation["patient_url"].rsplit("/", 1)[1] + "/documents"
    async with patient.get(prefix) as r:
        assert r.status == 403
    async with patient.post(prefix, json={"size": ece.padded_size(100)}, headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 403
    async with patient.get(prefix + "/events") as r:
        assert r.status == 403


async def test_a_clinician_cannot_reach_the_documents_of_another_clinicians_consultation(live, http):
    app = await live()
    _, api, auth = await _api_clinician(app, http, "a@example.org")
    consultation = await _create(app, api, auth)
    other, other_api, other_auth = await _api_clinician(app, http, "b@example.org")
    dashboard = http()
    csrf = await login(dashboard, app.url, other)
    for client, prefix, headers in (
            (dashboard, f"/consultations/{consultation['id']}/documents", {"X-CSRF-Token": csrf}),
            (other_api, f"/api/consultations/{consultation['id']}/documents", other_auth)):
        async with client.get(app.url + prefix, headers=headers) as r:
            assert r.status == 404, (prefix, r.status)
        async with client.post(app.url + prefix, json={"size": ece.padded_size(100)}, headers=headers) as r:
            assert r.status == 404, (prefix, r.status)


async def test_a_document_is_reached_only_through_its_own_box(live, http):
    app = await live()
    _, api, auth = await _api_clinician(app, http)
    first, second = await _create(app, api, auth), await _create(app, api, auth)
    sent = await upload(api, app.url, f"/api/consultations/{first['id']}/documents", secrets.token_bytes(32),
                        b"report", "r.pdf", "clinician", headers=auth)
    for url in (f"/api/consultations/{second['id']}/documents/{sent['id']}/metadata",
                f"/api/consultations/{second['id']}/documents/{sent['id']}",
                f"/d/files/{sent['id']}/metadata", f"/d/files/{sent['id']}"):
        async with api.get(app.url + url, headers=auth) as r:
            assert r.status == 404, (url, r.status)
    async with api.get(app.url + f"/api/consultations/{first['id']}/documents/{sent['id']}/metadata",
                       headers=auth) as r:
        assert r.status == 200


async def test_the_drop_sender_page_and_its_uploads_need_a_logged_in_clinician(live, http):
    app = await live()
    stranger = http()
    async with stranger.get(app.url + "/d/", headers={"Accept": "text/html"}, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/login"
    async with stranger.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())  # a session and its CSRF token, but nobody logged in
    async with stranger.post(app.url + "/d/files", json={"size": ece.padded_size(100)},
                             headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 401


async def test_only_the_owner_token_writes_the_parts_of_a_standalone_drop(live, http):
    app = await live()
    _, api, auth = await _api_clinician(app, http)
    size = ece.padded_size(100)
    async with api.post(app.url + "/api/drop/files", json={"size": size}, headers=auth) as r:
        created = await r.json()
    doc, owner = created["id"], created["owner_token"]
    stranger = http()
    for headers in ({}, {"X-Owner-Token": "not-the-owner-token-" + "x" * 12}):
        async with stranger.get(f"{app.url}/api/drop/files/{doc}/upload", headers=headers) as r:
            assert r.status == 403, ("upload state", headers, r.status)
        async with stranger.patch(f"{app.url}/api/drop/files/{doc}/upload", data=os.urandom(size),
                                  headers={**headers, "Upload-Offset": "0"}) as r:
            assert r.status == 403, ("part", headers, r.status)
        async with stranger.post(f"{app.url}/api/drop/files/{doc}/complete", data=b"m" * 64, headers=headers) as r:
            assert r.status == 403, ("complete", headers, r.status)
    async with stranger.patch(f"{app.url}/api/drop/files/{doc}/upload", data=os.urandom(size),
                              headers={"X-Owner-Token": owner, "Upload-Offset": "0"}) as r:
        assert r.status == 200 and (await r.json())["offset"] == size


async def test_a_standalone_drop_cannot_outlive_the_hosts_maximum(live, http):
    app = await live(drop_max_expiry_hours=1)
    _, api, auth = await _api_clinician(app, http)
    body = {"size": ece.padded_size(100)}
    async with api.post(app.url + "/api/drop/files", json={**body, "expires_in": 2 * 3600}, headers=auth) as r:
        assert r.status == 400, f"a 2-hour drop was accepted with drop_max_expiry_hours = 1 ({r.status})"
    async with api.post(app.url + "/api/drop/files", json={**body, "expires_in": 3600}, headers=auth) as r:
        assert r.status == 201
        assert (await r.json())["expires_at"] - (await r.json())["created_at"] == pytest.approx(3600)


async def test_downloads_are_attachments_the_browser_never_renders(live, http):
    app = await live()
    _, api, auth = await _api_clinician(app, http)
    sent = await upload(api, app.url, "/api/drop/files", secrets.token_bytes(16), b"<html>x</html>", "x.html",
                        "standalone", headers=auth)
    async with http().get(f"{app.url}/d/files/{sent['id']}") as r:
        assert r.status == 200
        assert r.headers["Content-Disposition"] == "attachment"
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("bad", ["../escape-from-the-store", "..", "a/b" * 10, "x" * 15, "é" * 20, ""])
async def test_the_store_refuses_a_file_name_that_is_not_one_of_its_ids(tmp_path, bad):
    storage = Storage(tmp_path / "documents")
    for use in (storage.partial_path, storage.ready_path):
        with pytest.raises(ValueError):
            use(bad)
    for use in (storage.create, storage.remove):
        with pytest.raises(ValueError):
            await use(bad)
    with pytest.raises(ValueError):
        async with storage.reading(bad):
            pass
    assert not list((tmp_path).rglob("escape*"))


async def test_ciphertext_files_and_their_folders_are_private_to_the_apps_user(live, http):
    app = await live(documents_store="local")  # file modes are the local directory's (a bucket has none)
    _, api, auth = await _api_clinician(app, http)
    consultation = await _create(app, api, auth)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    await upload(api, app.url, prefix, secrets.token_bytes(32), b"report", "r.pdf", "clinician", headers=auth)
    await _start_upload(api, app.url + prefix, auth)  # one still in partial/
    root = Path(app.settings.data_dir) / "documents"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (root / "partial", root / "ready"):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder


async def test_a_drop_allowed_one_download_gives_it_once_when_asked_ten_times_at_once(live, http):
    app = await live()
    _, api, auth = await _api_clinician(app, http)
    sent = await upload(api, app.url, "/api/drop/files", secrets.token_bytes(16), os.urandom(300_000), "x.pdf",
                        "standalone", headers=auth, body_extra={"max_downloads": 1})
    clients = [http() for _ in range(10)]
    # the worst case, made certain: all ten pass the first check (nothing downloaded yet) before
    # any is counted, so only the counting itself can keep the limit
    drops, checked, all_checked = app.services.drops, [], asyncio.Event()
    first_check = drops.get

    async def check_then_wait_for_the_others(*args, **kwargs):
        found = await first_check(*args, **kwargs)
        checked.append(found)
        if len(checked) == len(clients):
            all_checked.set()
        await asyncio.wait_for(all_checked.wait(), 10)
        return found
    drops.get = check_then_wait_for_the_others

    async def fetch(client):
        async with client.get(f"{app.url}/d/files/{sent['id']}") as r:
            await r.read()
            return r.status
    statuses = await asyncio.gather(*(fetch(c) for c in clients))
    assert sorted(statuses) == [200] + [404] * 9, statuses


async def test_a_document_past_its_expiry_answers_like_an_unknown_one_before_the_sweeper_removes_it(live, http):
    app = await live()
    _, api, auth = await _api_clinician(app, http)
    sent = await upload(api, app.url, "/api/drop/files", secrets.token_bytes(16), b"note", "n.txt", "standalone",
                        headers=auth, body_extra={"expires_in": 60})
    drops = app.services.drops
    drops.clock = lambda: time.time() + 120  # two minutes later; no sweep has run
    answers = set()
    for doc in (sent["id"], "U" * 22):
        async with http().get(f"{app.url}/d/files/{doc}/metadata") as r:
            answers.add((r.status, await r.text()))
    assert len(answers) == 1 and answers.pop()[0] == 404, answers
