"""Python client of the drop box over HTTP (filedrop/http.py), with the same end-to-end
encryption as the browser (filedrop/ece/, docs/encryption.md). Memory is bounded whatever
the file size.

* common.py: the errors, the :class:`Box` of URLs where a host mounted the drop box (given by
  the caller: filedrop knows no host's paths), the encryption of a file into parts, the
  placing of a received file; no HTTP library;
* blocking.py: the whole client on the standard library's http.client, for programs that
  start, transfer and exit (`teleconsult drop`): no aiohttp, no asyncio to import;
* for asyncio programs, on aiohttp: transport.py (a session fit for long transfers, listing,
  metadata, deletion), sending.py (encrypt while uploading in parts, resuming after a dropped
  connection: :func:`upload`; :func:`send_drop` for a standalone drop under a fresh secret),
  receiving.py (decrypt as the download arrives, into a temporary file renamed into place
  only once the whole stream authenticated: :func:`download`). These are imported on first
  use, so that ``import filedrop.client.blocking`` does not load aiohttp.

The secret never leaves this process: it is not in any URL, header or body sent.
"""

from __future__ import annotations

import importlib

from .common import (DROP_SECRET_SIZE, MAX_NAME_BYTES, OFFSET_HEADER, OWNER_HEADER, PART_SIZE, Box,
                     DropClientError, FileChanged, HTTPError, NotFound, OutputExists, Progress, Received, Sent,
                     TransferFailed, safe_name)

_ON_AIOHTTP = {
    "client_session": "transport", "delete_drop": "transport", "fetch_metadata": "transport",
    "list_box": "transport", "request_json": "transport",
    "send_drop": "sending", "upload": "sending",
    "download": "receiving",
}

__all__ = [
    "DROP_SECRET_SIZE",
    "MAX_NAME_BYTES",
    "OFFSET_HEADER",
    "OWNER_HEADER",
    "PART_SIZE",
    "Box",
    "DropClientError",
    "FileChanged",
    "HTTPError",
    "NotFound",
    "OutputExists",
    "Progress",
    "Received",
    "Sent",
    "TransferFailed",
    "client_session",
    "delete_drop",
    "download",
    "fetch_metadata",
    "list_box",
    "request_json",
    "safe_name",
    "send_drop",
    "upload",
]


def __getattr__(name: str):
    module = _ON_AIOHTTP.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
