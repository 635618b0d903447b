"""Python client of the drop box over HTTP (filedrop/http.py), with the same end-to-end
encryption as the browser (filedrop/ece/, docs/encryption.md). Memory is bounded whatever
the file size.

* transport.py: the errors, the :class:`Box` of URLs where a host mounted the drop box (given
  by the caller: filedrop knows no host's paths), a session fit for long transfers, listing,
  metadata and deletion;
* sending.py: encrypt while uploading in parts, resuming after a dropped connection
  (:func:`upload`; :func:`send_drop` for a standalone drop under a fresh secret);
* receiving.py: decrypt as the download arrives, into a temporary file renamed into place
  only once the whole stream authenticated (:func:`download`).

The secret never leaves this process: it is not in any URL, header or body sent.
"""

from __future__ import annotations

from .receiving import MAX_NAME_BYTES, Received, download, safe_name
from .sending import DROP_SECRET_SIZE, PART_SIZE, Sent, send_drop, upload
from .transport import (OFFSET_HEADER, OWNER_HEADER, Box, DropClientError, FileChanged, HTTPError, NotFound,
                        OutputExists, Progress, TransferFailed, client_session, delete_drop, fetch_metadata,
                        list_box, request_json)

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
