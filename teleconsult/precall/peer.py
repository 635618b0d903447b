"""Pre-call test: a WebRTC peer in the backend that echoes the browser's media.

The patient's browser opens an RTCPeerConnection to an :class:`EchoPeers`
instance (through a thin HTTP handler that only moves the SDP offer and answer).
The peer sends every incoming audio and video track straight back on the same
transceiver and echoes every data-channel message unchanged, so the page can
measure round-trip time, loss, jitter and bitrate with ``getStats`` and its own
ping messages.

Bounds, so that an open page cannot hold server resources for long:

* at most ``max_sessions`` peers exist at once; one more raises
  :class:`PeersBusy`, which says when to retry;
* each peer is closed ``max_duration_seconds`` after its answer was produced;
* a peer is closed as soon as its connection goes to failed / closed /
  disconnected (the browser hung up), and when nothing at all has arrived from
  the browser for ``idle_timeout_seconds`` (the browser vanished without a word:
  ICE consent expiry alone would take about half a minute). Media, RTCP and
  data-channel pings all count as traffic, so a page that keeps pinging stays
  alive even with camera and microphone refused.

No third-party STUN server is contacted unless the operator configures one:
an empty ``ice_servers`` list gives aiortc an explicitly empty list (aiortc's
own default would be a public Google STUN server).

This module knows nothing about HTTP; it raises :class:`BadOffer` and
:class:`PeersBusy`, which the handler maps to 400 and 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# aiortc (with PyAV) weighs about 28 MiB of memory: it is imported on the first offer,
# not at start-up, so an app whose pre-call test is never used does not pay for it.
if TYPE_CHECKING:
    from aiortc import RTCPeerConnection
    from aiortc.sdp import SessionDescription

__all__ = [
    "BadOffer",
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_MAX_DURATION_SECONDS",
    "DEFAULT_MAX_SESSIONS",
    "EchoPeers",
    "MAX_MEDIA_SECTIONS",
    "MAX_OFFER_CHARS",
    "PeersBusy",
    "PrecallError",
    "validate_ice_servers",
]

log = logging.getLogger(__name__)

#: Simultaneous echo peers, see docs/benchmarks-precall.md for what one core holds.
DEFAULT_MAX_SESSIONS = 4
#: A pre-call test needs well under a minute; the page can start a new one.
DEFAULT_MAX_DURATION_SECONDS = 60.0
#: No packet at all from the browser for this long => it is gone.
DEFAULT_IDLE_TIMEOUT_SECONDS = 10.0
#: How often a session's liveness and deadline are checked (at most).
DEFAULT_CHECK_INTERVAL_SECONDS = 1.0

#: A browser offer for audio + video + a data channel is 3-10 kB.
MAX_OFFER_CHARS = 64 * 1024
#: Audio, video, data channel, and some room for a second camera.
MAX_MEDIA_SECTIONS = 8
#: Media kinds the echo peer accepts in an offer.
ACCEPTED_MEDIA_KINDS = frozenset({"audio", "video", "application"})
#: Connection states after which the peer is released at once.
ENDED_CONNECTION_STATES = frozenset({"failed", "closed", "disconnected"})
#: ICE server URL schemes accepted in the configuration.
ICE_URL_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")

_SDP_LINE = re.compile(r"[a-z]=[\x20-\x7e\t]*")
_MEDIA_LINE = re.compile(r"m=([a-z]+) \d+(/\d+)? \S+( \S+)+")


class PrecallError(Exception):
    """Base class of the pre-call domain errors."""


class BadOffer(PrecallError, ValueError):
    """The SDP offer is malformed, not an offer, or not something we can echo."""


class PeersBusy(PrecallError):
    """All echo peers are in use (or the service is shutting down)."""

    def __init__(self, retry_after: int, message: str = "all pre-call test peers are busy"):
        super().__init__(message)
        #: Whole seconds after which a new attempt may succeed (>= 1).
        self.retry_after = retry_after


@dataclass(eq=False)
class _Session:
    id: str
    pc: RTCPeerConnection
    deadline: float
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    supervisor: asyncio.Task[None] | None = None
    released: bool = False

    def end(self, reason: str) -> None:
        if not self.end_reason:
            self.end_reason = reason
        self.ended.set()


def _ice_servers(servers: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Validate ``{urls, username?, credential?}`` dicts (aiortc objects are built per offer)."""
    result: list[dict[str, Any]] = []
    for i, server in enumerate(servers or ()):
        if not isinstance(server, Mapping):
            raise ValueError(f"ice_servers[{i}] must be a mapping")
        unknown = set(server) - {"urls", "username", "credential"}
        if unknown:
            raise ValueError(f"ice_servers[{i}] has unknown keys {sorted(unknown)}")
        urls = server.get("urls")
        url_list = [urls] if isinstance(urls, str) else urls
        if (
            not isinstance(url_list, list)
            or not url_list
            or not all(isinstance(u, str) and u.startswith(ICE_URL_SCHEMES) for u in url_list)
        ):
            raise ValueError(
                f"ice_servers[{i}].urls must be a stun:/stuns:/turn:/turns: URL or a list of them"
            )
        username = server.get("username")
        credential = server.get("credential")
        for name, value in (("username", username), ("credential", credential)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"ice_servers[{i}].{name} must be a string")
        if any(u.startswith(("turn:", "turns:")) for u in url_list) and (
            username is None or credential is None
        ):
            raise ValueError(f"ice_servers[{i}]: a TURN server needs username and credential")
        result.append({"urls": list(url_list), "username": username, "credential": credential})
    return result


def validate_ice_servers(servers: Iterable[Mapping[str, Any]] | None) -> None:
    """Raise ValueError, saying what is wrong, unless ``servers`` is a valid ICE server list."""
    _ice_servers(servers)


def _validate_offer(sdp: object, type: object) -> SessionDescription:
    """Cheap structural checks before aiortc sees the text, then aiortc's parser."""
    if type != "offer":
        raise BadOffer("type must be 'offer'")
    if not isinstance(sdp, str):
        raise BadOffer("sdp must be a string")
    if len(sdp) > MAX_OFFER_CHARS:
        raise BadOffer(f"offer longer than {MAX_OFFER_CHARS} characters")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0] != "v=0":
        raise BadOffer("offer does not start with v=0")
    for number, line in enumerate(lines, start=1):
        if not _SDP_LINE.fullmatch(line):
            raise BadOffer(f"line {number} is not an SDP line")
    media = [line for line in lines if line.startswith("m=")]
    if not media:
        raise BadOffer("offer has no media section")
    if len(media) > MAX_MEDIA_SECTIONS:
        raise BadOffer(f"offer has more than {MAX_MEDIA_SECTIONS} media sections")
    for line in media:
        match = _MEDIA_LINE.fullmatch(line)
        if not match or match.group(1) not in ACCEPTED_MEDIA_KINDS:
            raise BadOffer("offer has an unsupported media section")
    for attribute in ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:"):
        if not any(line.startswith(attribute) for line in lines):
            raise BadOffer(f"offer lacks {attribute[2:-1]}")
    from aiortc.sdp import SessionDescription

    try:
        return SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises many kinds of errors
        raise BadOffer("offer could not be parsed") from exc


async def _packets_received(pc: RTCPeerConnection) -> int:
    """Every datagram received from the peer so far (DTLS, SCTP, RTP, RTCP)."""
    report = await pc.getStats()
    return sum(
        getattr(stats, "packetsReceived", 0)
        for stats in report.values()
        if getattr(stats, "type", None) == "transport"
    )


class EchoPeers:
    """A bounded set of aiortc peers that echo media and data-channel messages."""

    def __init__(
        self,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_duration_seconds: float = DEFAULT_MAX_DURATION_SECONDS,
        ice_servers: Iterable[Mapping[str, Any]] | None = None,
        *,
        idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        check_interval_seconds: float = DEFAULT_CHECK_INTERVAL_SECONDS,
    ) -> None:
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError("max_sessions must be a positive integer")
        for name, value in (
            ("max_duration_seconds", max_duration_seconds),
            ("idle_timeout_seconds", idle_timeout_seconds),
            ("check_interval_seconds", check_interval_seconds),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds")
        self._max_sessions = max_sessions
        self._max_duration = float(max_duration_seconds)
        self._idle_timeout = float(idle_timeout_seconds)
        self._check_interval = float(check_interval_seconds)
        self._ice_servers = _ice_servers(ice_servers)
        self._sessions: dict[str, _Session] = {}
        self._shutting_down = False

    @property
    def active_count(self) -> int:
        """Peers currently held (including ones still producing their answer)."""
        return len(self._sessions)

    @property
    def max_sessions(self) -> int:
        return self._max_sessions

    def _retry_after(self) -> int:
        if self._shutting_down or not self._sessions:
            return max(1, math.ceil(self._check_interval))
        loop = asyncio.get_running_loop()
        soonest = min(s.deadline for s in self._sessions.values()) - loop.time()
        return max(1, math.ceil(soonest))

    async def answer(self, sdp: str, type: str) -> dict[str, str]:
        """Answer a browser's offer with a peer that echoes what it receives.

        Returns ``{"sdp": ..., "type": "answer"}`` with all local ICE
        candidates included (no trickle). Raises :class:`BadOffer` or
        :class:`PeersBusy`.
        """
        description = _validate_offer(sdp, type)
        if self._shutting_down or len(self._sessions) >= self._max_sessions:
            raise PeersBusy(self._retry_after())

        loop = asyncio.get_running_loop()
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(**s) for s in self._ice_servers]))
        session = _Session(
            id=secrets.token_hex(4), pc=pc, deadline=loop.time() + self._max_duration
        )
        # Reserve the slot before the first await so concurrent offers count.
        self._sessions[session.id] = session
        self._wire(session)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            echoed = 0
            for transceiver in pc.getTransceivers():
                track = transceiver.receiver.track
                if track is not None and transceiver.sender.track is None:
                    transceiver.sender.replaceTrack(track)
                    transceiver.direction = "sendrecv"
                    echoed += 1
            if not echoed and not any(m.kind == "application" for m in description.media):
                raise BadOffer("offer sends no media and no data channel: nothing to echo")
            await pc.setLocalDescription(await pc.createAnswer())
            local = pc.localDescription
        except BaseException as exc:
            shut_down = session.released  # close_all() ran meanwhile
            await self._release(session, "answer failed")
            if isinstance(exc, BadOffer) or not isinstance(exc, Exception):
                raise
            if shut_down:
                raise PeersBusy(self._retry_after(), "pre-call test peers are shutting down") from exc
            log.info("precall %s: offer refused by aiortc: %r", session.id, exc)
            raise BadOffer("offer could not be answered") from exc
        if session.released:  # close_all() ran while the answer was being built
            raise PeersBusy(self._retry_after(), "pre-call test peers are shutting down")
        session.supervisor = asyncio.create_task(
            self._supervise(session), name=f"precall-{session.id}"
        )
        log.info("precall %s: answered (%d tracks echoed)", session.id, echoed)
        return {"sdp": local.sdp, "type": local.type}

    def _wire(self, session: _Session) -> None:
        pc = session.pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ENDED_CONNECTION_STATES:
                session.end(f"connection {pc.connectionState}")

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                if channel.readyState == "open":
                    channel.send(message)

    async def _supervise(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        last_received = -1
        quiet_since = loop.time()
        try:
            while not session.ended.is_set():
                remaining = session.deadline - loop.time()
                if remaining <= 0:
                    session.end("max duration")
                    break
                try:
                    await asyncio.wait_for(
                        session.ended.wait(), min(self._check_interval, remaining)
                    )
                    break
                except asyncio.TimeoutError:
                    pass
                received = await _packets_received(session.pc)
                now = loop.time()
                if received != last_received:
                    last_received, quiet_since = received, now
                elif now - quiet_since >= self._idle_timeout:
                    session.end("idle")
        except Exception:  # never let a supervisor die holding a slot
            log.exception("precall %s: supervisor error", session.id)
            session.end("supervisor error")
        finally:
            await self._release(session, session.end_reason or "cancelled")

    async def _release(self, session: _Session, reason: str) -> None:
        if session.released:
            return
        session.released = True
        self._sessions.pop(session.id, None)
        try:
            await session.pc.close()
        except Exception:
            log.exception("precall %s: error while closing", session.id)
        log.info("precall %s: closed (%s)", session.id, reason)

    async def close_all(self) -> None:
        """Close every peer and refuse new ones (application shutdown)."""
        self._shutting_down = True
        sessions = list(self._sessions.values())
        for session in sessions:
            session.end("shutdown")
        supervisors = [s.supervisor for s in sessions if s.supervisor is not None]
        await asyncio.gather(
            *(self._release(s, "shutdown") for s in sessions if s.supervisor is None)
        )
        if supervisors:
            await asyncio.gather(*supervisors, return_exceptions=True)
