"""``/branch`` on a company hub: branch hubs connect with a branch token, say hello,
send a snapshot, then their outbox in acknowledged batches.

The token's single branch id says which branch it is; its company id, which
company. Everything a branch sends is validated like any other input; an entry
whose sequence number was already applied is acknowledged and skipped.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pm_core.protocol import (
    JOB_STATUSES,
    PRINTER_STATUSES,
    BranchEvent,
    ErrorCode,
    HubEvent,
    Namespace,
    ProtocolError,
    ok_ack,
)
from pm_core.protocol.errors import outcome_of
from pm_core.protocol.validation import get_float, get_int, get_str, invalid, require_object
from pm_hub.auth import AuthError
from pm_hub.company.ids import MAX_BRANCH_ID, global_id, valid_local_id
from pm_hub.company.mirror import BranchLink, BranchMirror
from pm_hub.handlers import guarded
from pm_hub.ops_namespace import refuse
from pm_hub.store import mirror as mirror_store
from pm_hub.store import tenants

if TYPE_CHECKING:
    from pm_hub.hub import Hub

log = logging.getLogger(__name__)

KINDS = ("printer", "job", "alert", "agent")
ALERT_STATES = ("open", "acknowledged", "cleared")
#: Most entries or records in one message.
MAX_ENTRIES = 1000


#: What each kind of record must carry (field -> allowed values, or a type).
_REQUIRED: dict[str, dict[str, Any]] = {
    "printer": {"name": str, "status": PRINTER_STATUSES},
    "job": {"status": JOB_STATUSES},
    "alert": {"kind": str, "severity": ("critical", "warning", "info"), "state": ALERT_STATES},
    "agent": {"connected": bool},
}


def _record(value: Any, where: str, kind: str) -> dict[str, Any]:
    """A record a branch sent: an object with a valid id and the fields the company hub
    and its dashboards rely on."""
    if not isinstance(value, dict) or not valid_local_id(value.get("id")):
        raise invalid(f"{where} must be an object with an integer id from 1 to 999999999")
    for key, rule in _REQUIRED[kind].items():
        field = value.get(key)
        ok = isinstance(field, rule) if isinstance(rule, type) else field in rule
        if not ok:
            raise invalid(f"{where}.{key} is missing or not valid for a {kind}")
    return value


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    entries = data.get("entries")
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise invalid(f"entries must be a list of at most {MAX_ENTRIES}")
    checked = []
    last = 0
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        if not isinstance(entry, dict):
            raise invalid(f"{where} must be an object")
        seq = get_int(entry, "seq", required=True, minimum=1)
        kind = get_str(entry, "kind", required=True, choices=KINDS)
        ident = entry.get("id")
        if not valid_local_id(ident):
            raise invalid(f"{where}.id must be an integer from 1 to 999999999")
        assert seq is not None
        if seq <= last:
            raise invalid(f"{where}.seq must be greater than the one before")
        last = seq
        record = entry.get("record")
        if record is not None:
            assert kind is not None
            record = _record(record, f"{where}.record", kind)
            if record["id"] != ident:
                raise invalid(f"{where}.record.id must be {ident}")
        checked.append({"seq": seq, "kind": kind, "id": ident, "record": record})
    return checked


def setup_branch_namespace(hub: Hub, mirror: BranchMirror) -> None:
    sio = hub.sio
    ns = Namespace.BRANCH

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not hub.settings.company_mode:
            raise refuse("this hub is not a company hub (start it with pm hub --company-mode)")
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = hub.verify_token(token)
        except AuthError as exc:
            raise refuse(str(exc)) from None
        if principal.role != "branch":
            raise refuse("only tokens with role branch connect to /branch")
        if principal.branch_ids is None or len(principal.branch_ids) != 1:
            raise refuse("a branch token names exactly one branch (pm token create --branch B)")
        branch_id = principal.branch_ids[0]
        if not 1 <= branch_id <= MAX_BRANCH_ID:
            raise refuse(f"branch id must be from 1 to {MAX_BRANCH_ID}")
        branch = await hub.db.read(lambda d: tenants.get_branch(d, branch_id))
        if branch is not None and branch["company_id"] != principal.company_id:
            raise refuse(f"branch {branch_id} belongs to another company")
        await sio.save_session(
            sid, {"branch_id": branch_id, "company_id": principal.company_id}, namespace=ns
        )
        log.info("branch hub for branch %s (company %s) connected", branch_id, principal.company_id)

    async def disconnect(sid: str, reason: Any = None) -> None:
        link = mirror.link_by_sid.pop(sid, None)
        if link is None or link.sid != sid:
            return
        link.sid = None
        link.disconnected_at = time.time()
        link.snapshot_ids = {}
        branch_id = link.branch_id
        await hub.db.write(lambda d: mirror_store.close_link(d, branch_id))
        mirror.fail_requests(branch_id)
        log.warning("branch %s (%s) disconnected", branch_id, link.name)
        await mirror.branch_lost(link)

    sio.on("connect", connect, namespace=ns)
    sio.on("disconnect", disconnect, namespace=ns)

    async def session_of(sid: str) -> dict[str, Any]:
        try:
            session: dict[str, Any] = await sio.get_session(sid, namespace=ns)
        except KeyError:
            raise ProtocolError(ErrorCode.AUTH_FAILED, "not connected") from None
        return session

    def link_of(sid: str) -> BranchLink:
        link = mirror.link_by_sid.get(sid)
        if link is None or link.sid != sid:
            raise ProtocolError(ErrorCode.CONFLICT, "say branch:hello first")
        return link

    async def hello(sid: str, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("stream_id", "name", "version", "branch_id"))
        session = await session_of(sid)
        stream_id = get_str(data, "stream_id", required=True, max_length=64)
        name = get_str(data, "name", max_length=100) or f"Branch {session['branch_id']}"
        version = get_str(data, "version", max_length=40)
        assert stream_id is not None
        branch_id, company_id = session["branch_id"], session["company_id"]
        try:
            row = await hub.db.write(
                lambda d: mirror_store.open_link(
                    d,
                    branch_id=branch_id,
                    company_id=company_id,
                    stream_id=stream_id,
                    name=name,
                    version=version,
                )
            )
        except mirror_store.BranchConflict as exc:
            raise ProtocolError(ErrorCode.FORBIDDEN, str(exc)) from None
        if row["reset"]:
            log.warning("branch %s has a new outbox stream: its mirror starts afresh", branch_id)
            mirror.forget_branch(branch_id)
        link = mirror.links.get(branch_id)
        if link is None:
            link = BranchLink(branch_id=branch_id, company_id=company_id, name=name)
            mirror.links[branch_id] = link
        if link.sid is not None and link.sid != sid:
            old_sid = link.sid
            mirror.link_by_sid.pop(old_sid, None)
            log.warning("branch %s connected again; closing its previous connection", branch_id)
            await sio.disconnect(old_sid, namespace=ns)
        link.name, link.company_id, link.version = name, company_id, version
        link.sid = sid
        link.connected_at = row["connected_at"]
        link.disconnected_at = None
        link.last_sync_at = row["last_sync_at"]
        link.pending, link.oldest_age_s, link.reported_at = 0, None, time.time()
        link.snapshot_ids = {}
        mirror.link_by_sid[sid] = link
        await hub.join_branch_rooms(branch_id, company_id)
        await mirror.link_changed(link, now=True)
        return ok_ack(
            branch_id=branch_id, company_id=company_id, last_seq=row["last_seq"], reset=row["reset"]
        )

    async def snapshot(sid: str, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("seq", "kind", "records", "last", "complete"))
        link = link_of(sid)
        seq = get_int(data, "seq", required=True, minimum=0)
        kind = get_str(data, "kind", required=True, choices=KINDS)
        records = data.get("records")
        if not isinstance(records, list) or len(records) > MAX_ENTRIES:
            raise invalid(f"records must be a list of at most {MAX_ENTRIES}")
        assert seq is not None and kind is not None
        checked = [_record(r, f"records[{i}]", kind) for i, r in enumerate(records)]
        if link.snapshot_seq != seq:
            link.snapshot_seq, link.snapshot_ids = seq, {}
        kept = link.snapshot_ids.setdefault(kind, set())
        branch_id, company_id = link.branch_id, link.company_id
        changes = await hub.db.write(
            lambda d: mirror_store.apply_snapshot(
                d, branch_id=branch_id, company_id=company_id, kind=kind, seq=seq, records=checked
            )
        )
        kept.update(global_id(branch_id, r["id"]) for r in checked)
        if data.get("last"):
            complete = data.get("complete", True) is not False
            ids = set(kept)
            changes += await hub.db.write(
                lambda d: mirror_store.finish_snapshot(
                    d, branch_id=branch_id, kind=kind, kept=ids, complete=complete
                )
            )
            link.snapshot_ids.pop(kind, None)
        await mirror.apply(changes)
        await mirror.link_changed(link)
        return ok_ack(changed=len(changes))

    async def changes(sid: str, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("entries", "remaining", "oldest_age_s"))
        link = link_of(sid)
        entries = _entries(data)
        remaining = get_int(data, "remaining", default=0, minimum=0)
        oldest = get_float(data, "oldest_age_s", minimum=0)
        branch_id, company_id = link.branch_id, link.company_id
        applied, last_seq, repeats = await hub.db.write(
            lambda d: mirror_store.apply_changes(
                d, branch_id=branch_id, company_id=company_id, entries=entries
            )
        )
        if repeats:
            log.info("branch %s resent %d entries already applied; skipped", branch_id, repeats)
        await mirror.apply(applied)
        now = time.time()
        link.pending, link.oldest_age_s, link.reported_at = remaining or 0, oldest, now
        link.last_sync_at = now
        await mirror.link_changed(link)
        return ok_ack(acked_seq=last_seq, applied=len(applied), repeats=repeats)

    async def heartbeat(sid: str, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("pending", "oldest_age_s", "seen"))
        link = link_of(sid)
        pending = get_int(data, "pending", default=0, minimum=0)
        oldest = get_float(data, "oldest_age_s", minimum=0)
        seen = data.get("seen") or {}
        if not isinstance(seen, dict) or len(seen) > 10_000:
            raise invalid("seen must be an object of printer id -> last_seen")
        now = time.time()
        was = mirror.link_state(link, now)[0]
        link.pending, link.oldest_age_s, link.reported_at = pending or 0, oldest, now
        if not pending:
            link.last_sync_at = now
            branch_id = link.branch_id
            await hub.db.write(lambda d: mirror_store.note_sync(d, branch_id, now))
        await _printers_seen(link, seen, now)
        await mirror.link_changed(link, now=mirror.link_state(link, now)[0] != was)
        return ok_ack()

    async def _printers_seen(link: BranchLink, seen: dict[str, Any], now: float) -> None:
        ids = []
        for key, at in seen.items():
            local = int(key) if isinstance(key, str) and key.isdigit() else None
            record = mirror.printers.get(global_id(link.branch_id, local)) if local else None
            if record is not None and isinstance(at, int | float):
                record["last_seen"] = float(at)
                ids.append(record["id"])
        if ids:
            await hub.broadcast(
                HubEvent.PRINTERS_SEEN,
                {
                    "company_id": link.company_id,
                    "branch_id": link.branch_id,
                    "at": now,
                    "printer_ids": sorted(ids),
                },
            )

    async def test_completed(sid: str, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        link = link_of(sid)
        cid = get_str(data, "correlation_id", required=True, max_length=120)
        assert cid is not None
        result = outcome_of(data, failed="test print failed")
        key = (link.branch_id, cid)
        ours = mirror.tests.pop(key, None)
        if ours is None:
            mirror.early_results[key] = result
            return ok_ack(late=True)
        hub.registry.resolve(ours, result)
        return ok_ack()

    for event, fn in (
        (BranchEvent.HELLO, hello),
        (BranchEvent.SNAPSHOT, snapshot),
        (BranchEvent.CHANGES, changes),
        (BranchEvent.HEARTBEAT, heartbeat),
        (BranchEvent.TEST_COMPLETED, test_completed),
    ):
        sio.on(
            event,
            guarded(event, fn, on_answer=hub.count_answer(ns)),
            namespace=ns,
        )

    async def unknown(event: str, sid: str, *args: Any) -> dict[str, Any]:
        return ProtocolError(ErrorCode.INVALID_PAYLOAD, f"unknown event {event!r}").to_ack()

    sio.on("*", unknown, namespace=ns)
