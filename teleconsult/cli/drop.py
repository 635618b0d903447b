"""`teleconsult drop send|get|delete` (options in parser.py): the end-to-end encrypted drop box from a terminal
(filedrop/client/blocking.py does the work, at the places teleconsult/drop_links.py names). It talks to a
running server over HTTP only; keys are made and used here and never sent. It imports neither
aiohttp nor asyncio, so that it starts transferring within a tenth of a second of being launched
(tests/test_cli_imports.py, bench/cli_startup.py).

Errors are one line on stderr and a non-zero exit status (1; 2 for usage errors; 130 when
interrupted), never a traceback."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from filedrop import ece
from filedrop.client import blocking as client
from filedrop.client import common

from .. import drop_links
from ..drop_links import ConsultationLink, DropLink, LinkError, parse_link
from .parser import TOKEN_ENV

class UsageError(Exception):
    """Bad arguments found after parsing (exit status 2)."""


# --- progress -------------------------------------------------------------------------


class ProgressLine:
    """`label  12.0/100.0 MiB  12%  45.1 MiB/s` redrawn in place on stderr."""

    def __init__(self, label: str, enabled: bool, stream=None):
        self.label, self.enabled = label, enabled
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.width = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self.drawn_at < 0.1:
            return
        self.drawn_at = now
        mib = 1024 * 1024
        rate = done / mib / max(now - self.started, 1e-6)
        percent = f"{100 * done // total:3d}%" if total else "    "
        line = f"{self.label}  {done / mib:.1f}/{total / mib:.1f} MiB  {percent}  {rate:.1f} MiB/s"
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def close(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _progress_enabled(args) -> bool:
    return bool(args.progress) or sys.stderr.isatty()


def _label(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _token(args, required: bool) -> str | None:
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if required and not token:
        raise UsageError(f"an API token is needed: --token TOKEN or {TOKEN_ENV} "
                         "(a clinician gets one with `teleconsult clinician token EMAIL`)")
    return token


def _consultation_link(text: str) -> ConsultationLink:
    link = parse_link(text)
    if not isinstance(link, ConsultationLink):
        raise UsageError("--consultation takes the patient link /j/TOKEN#SECRET, not a drop link")
    return link


def _consultation_box(session, args) -> tuple[common.Box, ConsultationLink]:
    link = _consultation_link(args.consultation)
    token = _token(args, required=True)
    found = client.request_json(session, "GET", link.server + drop_links.CONSULTATIONS_API,
                                "listing your consultations", headers={"Authorization": f"Bearer {token}"})
    consultation = drop_links.consultation_in(found, link)
    return drop_links.consultation_box(link.server, token, consultation["id"]), link


# --- send -----------------------------------------------------------------------------


def _send(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    progress = ProgressLine(f"sending {_label(path.name)}", _progress_enabled(args))
    with client.Session() as session:
        try:
            if args.consultation:
                if args.expires is not None or args.downloads is not None:
                    raise UsageError("--expires and --downloads are for standalone drops; a consultation's "
                                     "documents are deleted when it ends")
                box, link = _consultation_box(session, args)
                sent = client.upload(session, box, path, link.secret, role="clinician", progress=progress)
                progress.close()
                print(sent.id)
                print(f"sent {path.name} into the consultation's box (document {sent.id})", file=sys.stderr)
                return 0
            if not args.server:
                raise UsageError("--server URL is needed (or --consultation LINK)")
            server = args.server.rstrip("/")
            sent = client.send_drop(session, drop_links.standalone_box(server, _token(args, required=True)), path,
                                    expires_in=args.expires, max_downloads=args.downloads, progress=progress)
            drop_link = DropLink(server, sent.id, sent.secret)
        finally:
            progress.close()
    print(drop_link)
    print(f"owner token: {sent.owner_token}", file=sys.stderr)
    print(f"to delete it before it expires: teleconsult drop delete {drop_link.server}/d/{sent.id} "
          f"--owner-token={sent.owner_token}", file=sys.stderr)
    return 0


# --- get ------------------------------------------------------------------------------


def _describe(document: dict, metadata: dict | None) -> str:
    name = metadata["name"] if metadata else "(metadata does not decrypt)"
    size = f"{metadata['size']} B" if metadata else f"~{document['size']} B"
    return f"{document['id']}  {document.get('uploaded_by', '?'):<9}  {size:>12}  {name}"


def _get_one(session, box, doc_id, secret, args, *, output=None, directory=".", metadata=None):
    label = _label(metadata["name"]) if metadata else doc_id[:12]
    progress = ProgressLine(f"receiving {label}", _progress_enabled(args))
    try:
        received = client.download(session, box, doc_id, secret, output=output, directory=directory,
                                         force=args.force, progress=progress, metadata=metadata)
    finally:
        progress.close()
    print(received.path)
    return received


def _get_from_box(session, args) -> int:
    box, link = _consultation_box(session, args)
    if args.target and args.all:
        raise UsageError("give a document id or --all, not both")
    if args.target:
        try:
            parsed = parse_link(args.target)
        except LinkError:
            parsed = None
        doc_id = parsed.doc_id if isinstance(parsed, DropLink) else args.target
        _get_one(session, box, doc_id, link.secret, args, output=args.output)
        return 0
    documents = client.list_box(session, box)
    if not args.all:
        # no document named: list what the box holds (names decrypted here)
        for document in documents:
            try:
                metadata = client.fetch_metadata(session, box, document["id"], link.secret)
            except ece.DecryptionError:
                metadata = None
            print(_describe(document, metadata))
        if not documents:
            print("the box is empty", file=sys.stderr)
        return 0
    directory = Path(args.output or ".")
    if not directory.is_dir():
        raise UsageError(f"with --all, -o/--output must be an existing directory: {directory}")
    failures, used = 0, set()
    for document in documents:
        try:
            metadata = client.fetch_metadata(session, box, document["id"], link.secret)
            name = common.safe_name(metadata["name"])
            stem, dot, extension = name.rpartition(".")
            stem, extension = (stem, dot + extension) if dot and stem else (name, "")
            number = 2
            while name in used:  # two documents of the box with the same name: both are kept
                name = f"{stem} ({number}){extension}"
                number += 1
            used.add(name)
            _get_one(session, box, document["id"], link.secret, args, output=directory / name,
                           metadata=metadata)
        except (common.DropClientError, ece.DecryptionError) as exc:
            failures += 1
            print(f"teleconsult: {document['id']}: {_message(exc)}", file=sys.stderr)
    return 1 if failures else 0


def _get(args) -> int:
    with client.Session() as session:
        if args.consultation:
            return _get_from_box(session, args)
        if args.all:
            raise UsageError("--all needs --consultation LINK")
        if not args.target:
            raise UsageError("give the drop link /d/ID#SECRET (quoted: # starts a comment in most shells)")
        link = parse_link(args.target)
        if isinstance(link, ConsultationLink):
            raise UsageError("that is a patient link: use --consultation LINK --token TOKEN [--all | DOC_ID]")
        box = drop_links.standalone_box(link.server)
        _get_one(session, box, link.doc_id, link.secret, args, output=args.output)
    return 0


def _delete(args) -> int:
    link = parse_link(args.link, need_secret=False)
    if not isinstance(link, DropLink):
        raise UsageError("only standalone drops (/d/ID links) are deleted this way")
    with client.Session() as session:
        client.delete_drop(session, drop_links.standalone_box(link.server), link.doc_id, args.owner_token)
    print(f"deleted {link.doc_id}", file=sys.stderr)
    return 0


# --- entry point ----------------------------------------------------------------------


def _message(exc: BaseException) -> str:
    if isinstance(exc, ece.DecryptionError):
        return f"decryption failed: {exc}"
    return str(exc) or type(exc).__name__


def run(args) -> int:
    work = {"send": _send, "get": _get, "delete": _delete}[args.action]
    try:
        return work(args)
    except UsageError as exc:
        print(f"teleconsult drop {args.action}: {exc}", file=sys.stderr)
        return 2
    except (common.DropClientError, LinkError, ece.DecryptionError) as exc:
        print(f"teleconsult: {_message(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file we could not read or write
        print(f"teleconsult: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nteleconsult: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        print(f"teleconsult: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
