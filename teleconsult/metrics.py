"""What a host's Prometheus reads at GET /metrics: aggregate counts only.

No name, no email, no id, no room: a metric says how many consultations wait, how many
documents are stored and how many were deleted and why, never whose. Values are read from
the database (the drop box's through its own `stats()`, and the pre-call peers) at scrape time, so several app processes over one
database report the same totals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from . import consultations as cs
from .db_tables import clinicians, consultations, knocks

if TYPE_CHECKING:
    from .services import Services

CONSULTATION_STATUSES = (cs.WAITING, cs.IN_CALL, cs.ENDED)
OVERDUE_SLACK_SECONDS = 60  # a sweep may legitimately be running or a transfer finishing


class _Snapshot:
    """A prometheus_client collector over values already read (its collect() cannot await)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


async def _count_by(conn, column: sa.Column, *where) -> dict[str, int]:
    rows = await conn.execute(sa.select(column, sa.func.count()).where(*where).group_by(column))
    return {key: count for key, count in rows}


async def _families(services: Services) -> list[Metric]:
    async with services.engine.connect() as conn:
        by_status = await _count_by(conn, consultations.c.status)
        waiting_knocks = await conn.scalar(
            sa.select(sa.func.count()).select_from(knocks).where(knocks.c.status == cs.KNOCK_WAITING))
        clinician_count = await conn.scalar(sa.select(sa.func.count()).select_from(clinicians))
    documents = await services.drops.stats(overdue_after=OVERDUE_SLACK_SECONDS)  # filedrop counts its own

    consultation_gauge = GaugeMetricFamily(
        "teleconsult_consultations", "Consultations by status (ended ones stay listed).", labels=["status"])
    for status in CONSULTATION_STATUSES:
        consultation_gauge.add_metric([status], by_status.get(status, 0))
    document_gauge = GaugeMetricFamily(
        "teleconsult_documents", "Encrypted documents on the server by state.", labels=["state"])
    for state, count in documents.by_state.items():  # every state, zero included
        document_gauge.add_metric([state], count)
    deleted_counter = CounterMetricFamily(
        "teleconsult_documents_deleted", "Documents deleted, by reason (scheduled, expired, owner, ...).",
        labels=["reason"])
    for reason, count in sorted(documents.deleted.items(), key=lambda item: str(item[0])):
        deleted_counter.add_metric([reason or "unknown"], count)
    settings = services.settings
    return [
        consultation_gauge,
        GaugeMetricFamily("teleconsult_knocks_waiting", "Patients waiting to be admitted.", value=waiting_knocks),
        GaugeMetricFamily("teleconsult_clinicians", "Clinician accounts.", value=clinician_count),
        document_gauge,
        GaugeMetricFamily("teleconsult_documents_stored_bytes", "Ciphertext bytes on disk.", value=documents.stored_bytes),
        GaugeMetricFamily("teleconsult_documents_overdue",
                          f"Documents still stored more than {OVERDUE_SLACK_SECONDS} s past their deletion "
                          "deadline: above zero, deletion is not running.", value=documents.overdue),
        deleted_counter,
        GaugeMetricFamily("teleconsult_precall_sessions", "Pre-call test sessions running now.",
                          value=services.precall_peers.active_count),
        GaugeMetricFamily("teleconsult_precall_sessions_max", "precall_max_sessions.",
                          value=settings.precall_max_sessions),
    ]


async def exposition(services: Services) -> bytes:
    """The Prometheus text format of every metric, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(await _families(services)))
    return generate_latest(registry)
