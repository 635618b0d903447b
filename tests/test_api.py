"""The integrators' HTTP API and its OpenAPI document."""

import time

import jwt

from teleconsult import accounts
from teleconsult.web.routes import ROUTES
from conftest import add_api_clinician

REQUIRED_OPERATIONS = {"createConsultation", "getConsultation", "endConsultation", "joinConsultation"}


async def _token(app, email="api@example.org"):
    return (await add_api_clinician(app.engine, email))[1]


async def test_openapi_document_names_every_api_operation_and_matches_the_routes(live, http):
    app = await live()
    async with http().get(app.url + "/api/openapi.json") as r:
        doc = await r.json()
    operations = {(method.upper(), path, op["operationId"])
                  for path, item in doc["paths"].items() for method, op in item.items()}
    routed = {(m, p, n) for m, p, _h, n in ROUTES if p.startswith("/api/") and p != "/api/openapi.json"}
    assert operations == routed
    assert REQUIRED_OPERATIONS <= {op for _m, _p, op in operations}
    assert doc["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


async def test_create_consultation_answers_id_and_patient_url_without_fragment(live, http):
    app = await live()
    token = await _token(app)
    client = http()
    started = time.perf_counter()
    async with client.post(app.url + "/api/consultations", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201
        body = await r.json()
    assert time.perf_counter() - started < 1.0
    assert set(body) >= {"id", "patient_url", "status"}
    assert body["patient_url"].startswith(app.url + "/j/") and "#" not in body["patient_url"]
    assert body["status"] == "waiting"
    assert "room" not in str(body)
    async with client.get(app.url + f"/api/consultations/{body['id']}",
                          headers={"Authorization": f"Bearer {token}"}) as r:
        assert (await r.json())["id"] == body["id"]


async def test_join_consultation_gives_the_clinician_a_moderator_token(live, http):
    app = await live()
    token = await _token(app)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/join", headers=auth) as r:
        access = await r.json()
    claims = jwt.decode(access["jwt"], app.settings.jitsi_app_secret, algorithms=["HS256"],
                        audience=app.settings.jitsi_app_id)
    assert claims["room"] == access["room"] and access["domain"] == "meet.example.org"
    assert claims["context"]["user"]["moderator"] is True
    assert claims["context"]["user"]["name"] == "Dr Martin"
    assert "email" not in str(claims) and "api@example.org" not in str(claims)
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert (await r.json())["status"] == "ended"
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert (await r.json())["status"] == "ended"  # idempotent
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/join", headers=auth) as r:
        assert r.status == 409


async def test_api_refuses_missing_forged_and_other_clinicians_tokens(live, http, caplog):
    app = await live()
    mine = await _token(app, "a@example.org")
    other = await _token(app, "b@example.org")
    client = http()
    async with client.post(app.url + "/api/consultations", headers={"Authorization": f"Bearer {mine}"}) as r:
        consultation = await r.json()
    for headers in ({}, {"Authorization": "Bearer tc_forged"}, {"Authorization": f"Basic {mine}"}):
        async with client.post(app.url + "/api/consultations", headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["status"] == 401
    async with client.get(app.url + f"/api/consultations/{consultation['id']}",
                          headers={"Authorization": f"Bearer {other}"}) as r:
        assert r.status == 404
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/join",
                           headers={"Authorization": f"Bearer {other}"}) as r:
        assert r.status == 404
    assert "refused (401)" in caplog.text
    assert mine not in caplog.text


async def test_a_new_api_token_replaces_the_old_one(live, http):
    app = await live()
    old = await _token(app)
    new = await accounts.issue_api_token(app.engine, "api@example.org")
    async with http().get(app.url + "/api/consultations", headers={"Authorization": f"Bearer {old}"}) as r:
        assert r.status == 401
    async with http().get(app.url + "/api/consultations", headers={"Authorization": f"Bearer {new}"}) as r:
        assert r.status == 200


async def test_healthz_answers_json_when_the_database_is_reachable(live, http):
    app = await live()
    async with http().get(app.url + "/healthz") as r:
        assert r.status == 200
        assert await r.json() == {"status": "ok", "database": "ok"}


async def test_maximum_duration_ends_a_consultation_through_the_sweeper(live, http):
    from teleconsult import ending
    app = await live()
    token = await _token(app)
    async with http().post(app.url + "/api/consultations", headers={"Authorization": f"Bearer {token}"}) as r:
        consultation = await r.json()
    assert await ending.end_overdue(app.services, now=time.time()) == 0
    assert await ending.end_overdue(app.services, now=consultation["deadline_at"] + 1) == 1
    async with http().get(app.url + f"/api/consultations/{consultation['id']}",
                          headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
    assert body["status"] == "ended" and body["end_reason"] == "max_duration"
