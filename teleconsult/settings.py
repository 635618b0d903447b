"""Settings, declared once as the fields of `Settings`: type, default (or required), help, secrecy
and bounds. docs/configuration.md is generated from them (`python -m teleconsult.settings_doc`).

Sources, later wins: built-in defaults < demo-generated secrets < TOML file < TELECONSULT_*
environment variables < command-line options. `load_settings` validates everything once and
returns a frozen `Settings`; nothing else reads the environment.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client_address import parse_networks

ENV_PREFIX = "TELECONSULT_"
DEMO_SECRETS_FILE = "demo-secrets.toml"
MIN_SECRET_LENGTH = 32  # every secret setting
LEGACY_DEMO_JITSI_DOMAIN = "meet.invalid"  # older demos invented it; now the demo runs the direct call
JITSI_SECRET_REFUSED = "/\\\"'`"  # what Jitsi's jitsi-meet-tokens installer refuses in an app secret


class SettingsError(Exception):
    """The configuration is unusable; the message says what to change."""


@dataclass(frozen=True)
class Setting:
    """One setting as the rest of the code reads it (name, type, default, help...), built from
    its declaration in `Settings`."""

    name: str
    type: type
    default: Any  # None when required
    help: str
    secret: bool = False
    required: bool = False
    minimum: int | None = None  # bounds of a number, checked by _validate
    maximum: int | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


_DECLARATION = "teleconsult.setting"  # key of a field's metadata holding its declaration
REQUIRED: Any = object()  # the default of a setting that has none: load_settings refuses to start without it


def setting(default: Any, help: str, *, secret: bool = False,
            minimum: int | None = None, maximum: int | None = None) -> Any:
    """Declares one field of `Settings`: its default (or REQUIRED), help text, secrecy (at least
    MIN_SECRET_LENGTH characters, masked by `check`, never a default value) and bounds (numbers)."""
    required = default is REQUIRED
    if secret and not (required or default == ""):
        raise TypeError("a secret setting has no default value: REQUIRED, or \"\" (empty: turned off)")
    return dataclasses.field(metadata={_DECLARATION: {
        "default": None if required else default, "help": help, "required": required,
        "secret": secret, "minimum": minimum, "maximum": maximum}})


@dataclass(frozen=True)
class Settings:
    """Every setting, declared once: type, default, help, secrecy and bounds.

    Adding a setting is one line here, then `python -m teleconsult.settings_doc` regenerates the
    table of docs/configuration.md (tests/test_settings.py fails while it is stale). The fields
    have no default of their own: only `load_settings` builds a Settings, from every source.
    """

    data_dir: str = setting("./teleconsult-data",
        "Directory holding the SQLite database, demo secrets and the encrypted documents (documents/).")
    database_url: str = setting("",
        "URL of the database. Empty means SQLite (WAL) in data_dir/teleconsult.sqlite3. "
        "postgresql://user@host:5432/teleconsult (driver psycopg 3; password from PGPASSWORD or "
        "~/.pgpass) lets several instances share one database (docs/operations.md).")
    host: str = setting("127.0.0.1", "Address the HTTP server listens on.")
    port: int = setting(8080, "Port the HTTP server listens on.", minimum=1, maximum=65535)
    trusted_proxies: str = setting("",
        "Comma-separated addresses or networks (CIDR) of the reverse proxies in front of the app, "
        "e.g. 127.0.0.1,::1 for nginx on the same host. Only requests from these peers have their "
        "client address read from forwarded_header; rate limits key on that address. Empty: the "
        "peer's address is the client's (no proxy).")
    forwarded_header: str = setting("x-forwarded-for",
        "The header the trusted proxies set with the client's address: x-forwarded-for (nginx's "
        "proxy_add_x_forwarded_for) or forwarded (RFC 7239). Only this one is read.")
    public_url: str = setting("",
        "Public base URL of the app, as patients reach it (https://consult.example.org). Empty means "
        "http://{host}:{port}. Cookies are marked Secure when it starts with https.")
    session_secret: str = setting(REQUIRED,
        "Secret (at least 32 characters) that encrypts the session cookie. No default: generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`.", secret=True)
    session_idle_minutes: int = setting(30,
        "A clinician's login session ends after this many minutes without a request (an open "
        "dashboard or call page keeps it alive: its live stream checks in every minute). It also "
        "ends 12 hours after login whatever the activity, at logout, and on every device at a "
        "password change or a TOTP reset.", minimum=1, maximum=720)
    http_header_timeout_seconds: int = setting(15,
        "A client must send a whole request head (request line and headers) within this many seconds "
        "of connecting, or of the previous response on a kept-alive connection; otherwise the "
        "connection is closed. Also how long an idle kept-alive connection stays open.",
        minimum=1, maximum=600)
    http_body_timeout_seconds: int = setting(30,
        "While a request body is being received, a client that sends no byte for this many seconds "
        "gets 408 and its connection is closed (a slow upload that keeps sending is not cut).",
        minimum=1, maximum=600)
    http_max_connections_per_address: int = setting(64,
        "Simultaneous connections one peer address may hold; one more is answered 503 and closed. "
        "Peers in trusted_proxies are not capped (the proxy caps each client: limit_conn, see "
        "docs/operations.md). 0: no cap.", minimum=0, maximum=100_000)
    jitsi_domain: str = setting("",
        "Domain of the Jitsi Meet deployment (meet.example.org); the only third party a page may reach. "
        "Empty: no Jitsi; the call page runs a one-to-one call between the clinician's and the patient's "
        "browsers (the direct call: media peer to peer, this app relaying only the signalling; "
        "direct_ice_servers). Set: Jitsi is the engine (needs jitsi_app_id and jitsi_app_secret).")
    jitsi_scheme: str = setting("https",
        "Scheme used to reach jitsi_domain. Keep https; http exists only for loopback tests.")
    jitsi_app_id: str = setting("",
        "Application id shared with Prosody's token authentication (iss and aud of the JWT). Required "
        "with jitsi_domain.")
    jitsi_app_secret: str = setting("",
        "Required with jitsi_domain. HS256 secret shared with Prosody's token authentication (app_secret). At least 32 characters, "
        "none of / \\ \" ' or a backquote (Jitsi's jitsi-meet-tokens installer refuses them): generate one "
        "with `python -c 'import secrets; print(secrets.token_urlsafe(48))'` (letters, digits, - and _).",
        secret=True)
    jitsi_events_secret: str = setting("",
        "Secret shared with Prosody's mod_teleconsult_events (`teleconsult_events_secret`; not the "
        "app_secret), at least 32 characters. Empty: `POST /api/jitsi/events` answers 503 and room events"
        " (presence, end of the call) are not used; the app still runs. `--demo` generates one.", secret=True)
    jitsi_events_window_seconds: int = setting(300,
        "Room events whose signed timestamp is further than this from the app's clock are refused.", minimum=1)
    jitsi_events_bearer: bool = setting(False,
        "Accept room events authenticated by `Authorization: Bearer <jitsi_events_secret>` instead of the"
        " HMAC signature (for hosts already running jitsi-contrib's event_sync). Weaker: no timestamp, "
        "replays only caught by event id.")
    consultation_max_minutes: int = setting(120,
        "A consultation is ended automatically this long after its creation. The Jitsi tokens of its call "
        "are valid until then, so that a participant can reconnect after a network blip; none is handed out "
        "after the end (docs/threat-model.md).", minimum=1)
    login_max_failures: int = setting(5,
        "Failed attempts allowed within login_window_seconds: passwords per account and per client "
        "address (or, from a browser where the clinician logged in before, per that browser only, so "
        "guessing elsewhere never locks the clinician out), TOTP codes and password changes per "
        "account. A right credential does not count.", minimum=1)
    login_window_seconds: int = setting(900, "Window of the login rate limit.", minimum=1)
    link_guess_max: int = setting(20,
        "Unknown patient links (and, separately, unknown drop ids) a client address may try within "
        "link_guess_window_seconds before 429. A link or id that exists is never throttled.", minimum=1)
    link_guess_window_seconds: int = setting(600, "Window of the link-guessing rate limit.", minimum=1)
    knock_max: int = setting(5,
        "Knocks one browser may make on one consultation within knock_window_seconds (a declined patient "
        "cannot retry forever).", minimum=1)
    knock_window_seconds: int = setting(600, "Window of the knock rate limit.", minimum=1)
    documents_grace_seconds: int = setting(300,
        "After a consultation ends, its documents are deleted once this grace period has passed.", minimum=0)
    consultation_retention_days: int = setting(30,
        "An ended consultation's record (its times, its status, its knocks without their names, the "
        "audit lines of its documents) is deleted this many days after its end; its room name is kept "
        "so that it is never reused. Knocks lose their names earlier, when the documents go (the end "
        "plus documents_grace_seconds).", minimum=1, maximum=3650)
    documents_max_mib: int = setting(100,
        "Largest document accepted, in MiB of ciphertext (padded size). Larger uploads get 413 before any"
        " byte is written past the limit.", minimum=1)
    documents_sweep_seconds: int = setting(10,
        "How often the sweeper applies deletion deadlines (also once at start-up). A consultation's "
        "documents do not wait for it: they are deleted when their grace period ends.", minimum=1)
    documents_box_max_files: int = setting(30,
        "Documents one consultation may hold at a time (both sides, unfinished uploads included); one "
        "more is refused with 409 before anything is reserved.", minimum=1)
    documents_box_max_mib: int = setting(500,
        "MiB of ciphertext one consultation may hold at a time (declared sizes of its documents, "
        "unfinished uploads included).", minimum=1)
    documents_clinician_max_files: int = setting(300,
        "Documents all of one clinician's consultations and standalone drops may hold at a time.", minimum=1)
    documents_clinician_max_mib: int = setting(3000,
        "MiB of ciphertext all of one clinician's consultations and standalone drops may hold at a time.",
        minimum=1)
    documents_upload_idle_minutes: int = setting(15,
        "An unfinished upload that received no part for this long is removed (a phone that went away); "
        "an upload still receiving parts goes on.", minimum=1, maximum=1440)
    documents_min_free_mib: int = setting(1024,
        "Free disk space kept under the documents directory: an upload that would go below it is refused "
        "(507, \"the server is full\") before any byte is written; reading goes on.", minimum=0)
    documents_store: str = setting("local",
        "Where the encrypted documents are kept: `local` (data_dir/documents/, one machine) or `s3` (an "
        "S3-compatible bucket: Garage, MinIO, SeaweedFS, AWS S3; several instances share it; set the s3_* "
        "settings). Needs the `teleconsult[s3]` extra.")
    s3_endpoint: str = setting("",
        "documents_store = s3: the endpoint URL, e.g. `https://s3.garage.example.org` or `http://127.0.0.1:3900`.")
    s3_region: str = setting("us-east-1",
        "documents_store = s3: the region the endpoint signs for (Garage: its `s3_region`, often `garage`; "
        "MinIO and SeaweedFS accept `us-east-1`).")
    s3_bucket: str = setting("", "documents_store = s3: the bucket (created beforehand, private).")
    s3_prefix: str = setting("documents/",
        "documents_store = s3: key prefix of every object teleconsult writes in the bucket (empty: the whole "
        "bucket is teleconsult's); orphans under it are deleted by the sweeper.")
    s3_path_style: bool = setting(True,
        "documents_store = s3: path-style addressing (`endpoint/bucket/key`, what Garage, MinIO and SeaweedFS "
        "serve without DNS per bucket); false: virtual-hosted (`bucket.endpoint/key`).")
    s3_access_key_id: str = setting("",
        "documents_store = s3: the access key id (or give s3_credentials_file). Read from "
        "TELECONSULT_S3_ACCESS_KEY_ID in the environment like every setting.")
    s3_secret_access_key: str = setting("",
        "documents_store = s3: the secret key (or give s3_credentials_file); from the environment "
        "(TELECONSULT_S3_SECRET_ACCESS_KEY) rather than a file others can read.", secret=True)
    s3_credentials_file: str = setting("",
        "documents_store = s3: an AWS-style credentials file (INI: `[default]` with aws_access_key_id and "
        "aws_secret_access_key), readable by the app's user only; instead of the two key settings.")
    s3_credentials_profile: str = setting("default", "documents_store = s3: the section read in s3_credentials_file.")
    s3_part_mib: int = setting(8,
        "documents_store = s3: size of one S3 multipart part, in MiB; an upload holds at most one part in "
        "memory while it is sent (5 at least, S3's minimum).", minimum=5, maximum=512)
    drop_max_expiry_hours: int = setting(168,
        "Longest life a clinician may give a standalone drop (/d/ links).", minimum=1)
    profile_image_max_kib: int = setting(2048,
        "Largest logo or signature image a clinician may upload to their profile, in KiB. Images are "
        "checked (PNG or JPEG only), then re-encoded without their metadata.", minimum=16, maximum=20480)
    profile_image_max_pixels: int = setting(12_000_000,
        "Most pixels (width x height, read from the image header before decoding) a logo or signature "
        "image may have: a small file that unpacks to a huge picture is refused.",
        minimum=10_000, maximum=100_000_000)
    precall_max_sessions: int = setting(4,
        "Simultaneous pre-call test sessions (echo peers); one more is answered 503 + Retry-After. One "
        "session costs about a fifth of a core (docs/benchmarks-precall.md).", minimum=1)
    precall_max_seconds: int = setting(60,
        "A pre-call test session is closed this long after it started.", minimum=1)
    precall_ice_servers: str = setting("[]",
        "JSON list of STUN/TURN servers for the pre-call test, given to the browser and to the echo peer,"
        ' e.g. `[{"urls": "turn:meet.example.org:3478", "username": "u", "credential": "p"}]` (in TOML, '
        "between single quotes). Empty list: no third-party server is ever contacted (host candidates "
        "only: the echo peer's UDP ports must then be reachable from patients). Checked at start-up. The "
        "credentials reach every browser that opens /precall: use the TURN server of your own Jitsi "
        "deployment.")
    precall_offers_max: int = setting(10,
        "Pre-call test offers one address may send within precall_offers_window_seconds before 429.", minimum=1)
    precall_offers_window_seconds: int = setting(600, "Window of the pre-call offer rate limit.", minimum=1)
    precall_good_loss_percent: int = setting(5,
        'Pre-call verdict "good" needs packet loss (the worse of upload and download) under this '
        "percentage (and the good RTT and upload below).", minimum=1, maximum=100)
    precall_good_rtt_ms: int = setting(300,
        'Pre-call verdict "good" needs a round-trip time under this many milliseconds.', minimum=1)
    precall_good_upload_kbps: int = setting(1000,
        'Pre-call verdict "good" needs at least this upload bitrate, in kbit/s.', minimum=1)
    precall_usable_loss_percent: int = setting(10,
        'Pre-call verdict "usable" needs packet loss under this percentage (audio and video still conceal'
        ' it); worse is "not enough".', minimum=1, maximum=100)
    precall_usable_rtt_ms: int = setting(800,
        'Pre-call verdict "usable" needs a round-trip time under this many milliseconds (400 ms each way,'
        " the limit of a comfortable conversation).", minimum=1)
    precall_usable_upload_kbps: int = setting(300,
        'Pre-call verdict "usable" needs at least this upload bitrate, in kbit/s (low-resolution video '
        "with audio).", minimum=1)
    direct_ice_servers: str = setting("[]",
        "JSON list of STUN/TURN servers for the direct call (no jitsi_domain), given to both browsers once "
        'the patient is admitted, e.g. `[{"urls": "turn:turn.example.org:3478", "username": "u", '
        '"credential": "p"}]` (a coturn on the host). Empty list: no server is contacted; the browsers '
        "connect directly, which works on one machine or a local network; across the Internet most calls "
        "need a TURN server, and the call page tells the host so when a call cannot connect. Checked at "
        "start-up.")
    direct_leave_grace_seconds: int = setting(120,
        "Direct call: once the patient has joined, the consultation ends when neither the clinician's nor "
        "the patient's call page has been connected for this long (a reload or a network change comes "
        "back well within it).", minimum=1)
    live_heartbeat_seconds: int = setting(15,
        "Live pages (dashboard, waiting room, call, documents): each open event stream carries a "
        "heartbeat this often, and a page that hears nothing for three of them opens a new stream (a "
        "connection that died silently, e.g. a phone changing network). Lower it behind a proxy that "
        "closes idle connections sooner. An open dashboard's stream also checks its login session this "
        "often.", minimum=1)
    metrics_token: str = setting("",
        "Bearer token (at least 32 characters) for GET /metrics, the Prometheus text format with "
        "aggregate counts only (consultations by status, waiting patients, documents stored and deleted, "
        "pre-call sessions; never a name or an id). Empty: /metrics answers 404.", secret=True)
    demo: bool = setting(False,
        "Demo mode: generate missing secrets into data_dir and a demo clinician; without jitsi_domain the "
        "calls are direct browser-to-browser calls. Never for production.")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def call_engine(self) -> str:
        """"jitsi" when a Jitsi domain is configured, else "direct" (a one-to-one browser call)."""
        return "jitsi" if self.jitsi_domain else "direct"

    @property
    def jitsi_origin(self) -> str:
        """The Jitsi origin pages may reach; empty without Jitsi (the direct call)."""
        return f"{self.jitsi_scheme}://{self.jitsi_domain}" if self.jitsi_domain else ""

    @property
    def trusted_proxy_networks(self):
        """trusted_proxies parsed (validated at start-up by `load_settings`)."""
        return parse_networks(self.trusted_proxies)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'teleconsult.sqlite3'}"

    @property
    def direct_ice_server_list(self) -> list[dict[str, Any]]:
        """direct_ice_servers parsed (validated at start-up by `load_settings`)."""
        return json.loads(self.direct_ice_servers)

    @property
    def precall_ice_server_list(self) -> list[dict[str, Any]]:
        """precall_ice_servers parsed (validated at start-up by `load_settings`)."""
        return json.loads(self.precall_ice_servers)

    def safe_dict(self) -> dict[str, Any]:
        """Every setting, secrets masked: what `check` prints."""
        return {
            s.name: ("***" if s.secret and getattr(self, s.name) else getattr(self, s.name))
            for s in SETTINGS
        }


def _declarations(cls: type) -> tuple[Setting, ...]:
    types = typing.get_type_hints(cls)
    declared = []
    for f in dataclasses.fields(cls):
        if _DECLARATION not in f.metadata:
            raise TypeError(f"Settings.{f.name} must be declared with setting(default, help, ...)")
        if types[f.name] not in (str, int, bool):
            raise TypeError(f"Settings.{f.name}: a setting is a str, an int or a bool")
        declared.append(Setting(name=f.name, type=types[f.name], **f.metadata[_DECLARATION]))
    return tuple(declared)


SETTINGS: tuple[Setting, ...] = _declarations(Settings)  # in declaration order
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


# Loading lives beside the declaration (teleconsult/settings_loading.py); callers import it from here.
from .settings_loading import load_settings  # noqa: E402,F401
