"""``/branch`` on a company hub: branch hubs connect with a branch token, say hello,
send a snapshot, then their outbox in acknowledged batches.

The token's single branch id says which branch it is; its company id, which
company. Everything a branch sends is validated like any other input
(``pm_hub.company.branch_payloads``); an entry whose sequence number was already
applied is acknowledged and skipped.

The handlers are module-level functions of a :class:`BranchSide` (what they use),
bound by :func:`setup_branch_namespace`; a branch's link lives in the mirror.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import socketio

from pm_core.database import Database
from pm_core.protocol import BranchEvent, ErrorCode, Namespace, ProtocolError, ok_ack
from pm_core.protocol.errors import outcome_of
from pm_core.protocol.validation import (
    get_float,
    get_int,
    get_name,
    get_str,
    invalid,
    require_object,
)
from pm_hub.admission import Admission, remote_address
from pm_hub.auth import AuthError
from pm_hub.broadcast import Broadcaster
from pm_hub.company.branch_payloads import (
    KINDS,
    MAX_ENTRIES,
    checked_entries,
    checked_record,
)
from pm_hub.company.mirror import BranchLink, BranchMirror
from pm_hub.config import HubSettings
from pm_hub.correlation import CorrelationRegistry
from pm_hub.credentials import Credentials
from pm_hub.global_ids import MAX_BRANCH_ID, global_id, valid_local_id
from pm_hub.handlers import connect_handler, guarded, refuse, unknown_event
from pm_hub.live_state import LiveState
from pm_hub.metrics import HubMetrics
from pm_hub.operator_actions import Ack
from pm_hub.store import mirror as mirror_store
from pm_hub.store import tenants

log = logging.getLogger(__name__)

NS = Namespace.BRANCH


@dataclass(frozen=True)
class BranchSide:
    """What the ``/branch`` handlers use."""

    settings: HubSettings
    db: Database
    state: LiveState
    credentials: Credentials
    admission: Admission
    broadcaster: Broadcaster
    mirror: BranchMirror
    registry: CorrelationRegistry

    @property
    def sio(self) -> socketio.AsyncServer:
        return self.broadcaster.sio


async def connect(side: BranchSide, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    if not side.settings.company_mode:
        raise refuse("this hub is not a company hub (start it with pm hub --company-mode)")
    address = f"branch:{remote_address(environ)}"  # counted apart per kind of client
    waiting = side.admission.login_wait(address)
    if waiting is not None:
        raise refuse(waiting, ErrorCode.RATE_LIMITED)
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        principal = side.credentials.verify(token)
    except AuthError as exc:
        side.admission.logins.failed(address)
        raise refuse(str(exc)) from None
    side.admission.logins.succeeded(address)
    if principal.role != "branch":
        raise refuse("only tokens with role branch connect to /branch")
    if principal.branch_ids is None or len(principal.branch_ids) != 1:
        raise refuse("a branch token names exactly one branch (pm token create --branch B)")
    branch_id = principal.branch_ids[0]
    if not 1 <= branch_id <= MAX_BRANCH_ID:
        raise refuse(f"branch id must be from 1 to {MAX_BRANCH_ID}")
    branch = await side.db.read(lambda d: tenants.get_branch(d, branch_id))
    if branch is not None and branch["company_id"] != principal.company_id:
        raise refuse(f"branch {branch_id} belongs to another company")
    await side.sio.save_session(
        sid, {"branch_id": branch_id, "company_id": principal.company_id}, namespace=NS
    )
    side.state.branch_hubs[sid] = principal  # its token's revocation and expiry are watched
    log.info("branch hub for branch %s (company %s) connected", branch_id, principal.company_id)


async def disconnect(side: BranchSide, sid: str, reason: Any = None) -> None:
    side.state.branch_hubs.pop(sid, None)
    await side.mirror.link_closed(sid)


async def session_of(side: BranchSide, sid: str) -> dict[str, Any]:
    try:
        session: dict[str, Any] = await side.sio.get_session(sid, namespace=NS)
    except KeyError:
        raise ProtocolError(ErrorCode.AUTH_FAILED, "not connected") from None
    return session


def link_of(side: BranchSide, sid: str) -> BranchLink:
    link = side.mirror.link_by_sid.get(sid)
    if link is None or link.sid != sid:
        raise ProtocolError(ErrorCode.CONFLICT, "say branch:hello first")
    return link


async def hello(side: BranchSide, sid: str, payload: Any) -> Ack:
    data = require_object(payload, allowed=("stream_id", "name", "version", "branch_id"))
    session = await session_of(side, sid)
    stream_id = get_str(data, "stream_id", required=True, max_length=64)
    name = get_name(data, "name", max_length=100) or f"Branch {session['branch_id']}"
    version = get_str(data, "version", max_length=40)
    assert stream_id is not None
    branch_id, company_id = session["branch_id"], session["company_id"]
    try:
        row = await side.db.write(
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
    await side.mirror.link_opened(
        sid, branch_id=branch_id, company_id=company_id, name=name, version=version, row=row
    )
    return ok_ack(
        branch_id=branch_id, company_id=company_id, last_seq=row["last_seq"], reset=row["reset"]
    )


async def snapshot(side: BranchSide, sid: str, payload: Any) -> Ack:
    data = require_object(payload, allowed=("seq", "kind", "records", "last", "complete"))
    link = link_of(side, sid)
    seq = get_int(data, "seq", required=True, minimum=0)
    kind = get_str(data, "kind", required=True, choices=KINDS)
    records = data.get("records")
    if not isinstance(records, list) or len(records) > MAX_ENTRIES:
        raise invalid(f"records must be a list of at most {MAX_ENTRIES}")
    assert seq is not None and kind is not None
    checked = [checked_record(r, f"records[{i}]", kind) for i, r in enumerate(records)]
    if link.snapshot_seq != seq:
        link.snapshot_seq, link.snapshot_ids = seq, {}
    kept = link.snapshot_ids.setdefault(kind, set())
    branch_id, company_id = link.branch_id, link.company_id
    changes = await side.db.write(
        lambda d: mirror_store.apply_snapshot(
            d, branch_id=branch_id, company_id=company_id, kind=kind, seq=seq, records=checked
        )
    )
    kept.update(global_id(branch_id, r["id"]) for r in checked)
    if data.get("last"):
        complete = data.get("complete", True) is not False
        ids = set(kept)
        changes += await side.db.write(
            lambda d: mirror_store.finish_snapshot(
                d, branch_id=branch_id, kind=kind, kept=ids, complete=complete
            )
        )
        link.snapshot_ids.pop(kind, None)
    await side.mirror.apply(changes)
    await side.mirror.link_changed(link)
    return ok_ack(changed=len(changes))


async def changes(side: BranchSide, sid: str, payload: Any) -> Ack:
    data = require_object(payload, allowed=("entries", "remaining", "oldest_age_s"))
    link = link_of(side, sid)
    entries = checked_entries(data)
    remaining = get_int(data, "remaining", default=0, minimum=0)
    oldest = get_float(data, "oldest_age_s", minimum=0)
    branch_id, company_id = link.branch_id, link.company_id
    # Batches of many branches that wait for the writer together are applied together
    # (a few statements for all of them: what lets one process take 500 branches).
    applied, last_seq, repeats = await side.db.write_together(
        "mirror changes",
        mirror_store.apply_changes_many,
        {"branch_id": branch_id, "company_id": company_id, "entries": entries},
    )
    if repeats:
        log.info("branch %s resent %d entries already applied; skipped", branch_id, repeats)
    await side.mirror.apply(applied)
    now = time.time()
    link.pending, link.oldest_age_s, link.reported_at = remaining or 0, oldest, now
    link.last_sync_at = now
    await side.mirror.link_changed(link)
    return ok_ack(acked_seq=last_seq, applied=len(applied), repeats=repeats)


async def heartbeat(side: BranchSide, sid: str, payload: Any) -> Ack:
    data = require_object(payload, allowed=("pending", "oldest_age_s", "seen"))
    link = link_of(side, sid)
    pending = get_int(data, "pending", default=0, minimum=0)
    oldest = get_float(data, "oldest_age_s", minimum=0)
    seen = data.get("seen") or {}
    if not isinstance(seen, dict) or len(seen) > 10_000:
        raise invalid("seen must be an object of printer id -> last_seen")
    mirror = side.mirror
    now = time.time()
    was = mirror.link_state(link, now)[0]
    link.pending, link.oldest_age_s, link.reported_at = pending or 0, oldest, now
    if not pending:
        link.last_sync_at = now
        branch_id = link.branch_id
        await side.db.write(lambda d: mirror_store.note_sync(d, branch_id, now))
    await _printers_seen(side, link, seen, now)
    await mirror.link_changed(link, now=mirror.link_state(link, now)[0] != was)
    return ok_ack()


async def _printers_seen(
    side: BranchSide, link: BranchLink, seen: dict[str, Any], now: float
) -> None:
    times = {}
    for key, at in seen.items():
        local = int(key) if isinstance(key, str) and key.isdigit() and len(key) < 12 else None
        if valid_local_id(local) and isinstance(at, int | float) and not isinstance(at, bool):
            assert local is not None
            times[global_id(link.branch_id, local)] = float(at)
    if times:
        await side.mirror.printers_seen(link, times, now)


async def test_completed(side: BranchSide, sid: str, payload: Any) -> Ack:
    data = require_object(payload)
    link = link_of(side, sid)
    cid = get_str(data, "correlation_id", required=True, max_length=120)
    assert cid is not None
    result = outcome_of(data, failed="test print failed")
    if not await side.mirror.result_came(link.branch_id, cid, result, here=True):
        return ok_ack(late=True)
    return ok_ack()


HANDLERS = {
    BranchEvent.HELLO: hello,
    BranchEvent.SNAPSHOT: snapshot,
    BranchEvent.CHANGES: changes,
    BranchEvent.HEARTBEAT: heartbeat,
    BranchEvent.TEST_COMPLETED: test_completed,
}


def setup_branch_namespace(
    sio: socketio.AsyncServer, side: BranchSide, metrics: HubMetrics
) -> None:
    sio.on("connect", connect_handler(functools.partial(connect, side)), namespace=NS)
    sio.on("disconnect", functools.partial(disconnect, side), namespace=NS)
    on_answer = metrics.count_answer(NS)
    for event, handler in HANDLERS.items():
        sio.on(
            event,
            guarded(event, functools.partial(handler, side), on_answer=on_answer),
            namespace=NS,
        )
    sio.on("*", unknown_event, namespace=NS)
