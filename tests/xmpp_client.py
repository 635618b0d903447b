"""A minimal XMPP MUC client (slixmpp) for tests and benchmarks against tests/prosody_server.py.

    client = await XmppClient(prosody.port, "patient", password=jwt).connect()
    await client.join(f"{room}@{MUC_DOMAIN}", "patient-nick")
    client.leave(f"{room}@{MUC_DOMAIN}", "patient-nick")
    await client.close()

Each connection has its own resource, like a Jitsi client's. Plain TCP on loopback, SASL PLAIN: with mod_auth_insecure any password works; with
tests/prosody_plugins/mod_auth_teleconsult_test_token the password is the Jitsi JWT.
"""

from __future__ import annotations

import asyncio
import secrets

import slixmpp


class XmppClient:
    def __init__(self, port: int, user: str, password: str = "any-password", domain: str = "localhost",
                 resource: str | None = None):
        self.port = port
        # a fresh resource per connection, as Jitsi clients get: a reconnect is a new occupant JID
        # (a fixed `resource` when a test asserts occupant JIDs)
        self.jid = f"{user}@{domain}/{resource or secrets.token_hex(4)}"
        self.xmpp = slixmpp.ClientXMPP(
            self.jid, password, plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
        self.xmpp.enable_direct_tls = False
        self.xmpp.enable_starttls = False
        self.xmpp.enable_plaintext = True
        self.xmpp.register_plugin("xep_0045")
        self.xmpp.register_plugin("xep_0172")

    async def connect(self, timeout: float = 10) -> "XmppClient":
        started = asyncio.get_running_loop().create_future()
        self.xmpp.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        self.xmpp.add_event_handler(
            "failed_all_auth", lambda _: started.done() or started.set_exception(PermissionError("auth failed")))
        self.xmpp.connect("127.0.0.1", self.port)
        await asyncio.wait_for(started, timeout)
        return self

    async def join(self, room_jid: str, nick: str, display_name: str | None = None, timeout: float = 10) -> None:
        """Join a MUC; `display_name` goes in the presence as a XEP-0172 nickname (what Jitsi sends)."""
        options = {"pnick": display_name} if display_name else {}
        await self.xmpp.plugin["xep_0045"].join_muc_wait(
            slixmpp.JID(room_jid), nick, maxstanzas=0, presence_options=options, timeout=timeout)

    def leave(self, room_jid: str, nick: str) -> None:
        self.xmpp.plugin["xep_0045"].leave_muc(slixmpp.JID(room_jid), nick)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.xmpp.disconnect(wait=1), 5)
        except (asyncio.TimeoutError, ConnectionError):
            pass
