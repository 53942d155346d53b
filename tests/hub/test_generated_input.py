"""Generated input over every ``/ops`` event and every HTTP route (issue 12): whatever a
client sends, the answer is a well-formed error (never ``internal``, never an HTTP
500), the hub keeps serving, and a refused request changes no row.

The hub runs on its own event loop in a thread; hypothesis drives it from the test's
thread (pytest-asyncio's loops and hypothesis's examples do not mix)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pm_core.protocol import ErrorCode, OpsEvent
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient
from tests.support.raw_agent import RawAgent

T = TypeVar("T")
CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL.value}
OPS_EVENTS = [
    value
    for name, value in vars(OpsEvent).items()
    if name.isupper() and isinstance(value, str) and value != OpsEvent.TOKEN_REFRESH
]
ROUTES = [
    ("GET", "/api/v1/printers/{id}"),
    ("PATCH", "/api/v1/printers/{id}"),
    ("POST", "/api/v1/printers/{id}/test"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{id}"),
    ("POST", "/api/v1/jobs/{id}/cancel"),
    ("POST", "/api/v1/jobs/{id}/reprint"),
    ("PUT", "/api/v1/stations/{id}"),
    ("GET", "/api/v1/alerts"),
    ("POST", "/api/v1/alerts/{id}/ack"),
    ("GET", "/api/v1/printers"),
]
FIELDS = [
    "printer_id", "job_id", "alert_id", "station", "document", "copies", "name", "paused",
    "status", "limit", "before_id", "since", "idempotency_key", "printer_ids", "profile",
    "expires_in", "branch_id", "reason", "default_expiry_s", "station_priority", "state",
]  # fmt: skip

# Any character a client can put in JSON: control characters and lone surrogates too.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# The values that hurt most often: ids past 64 bits, NaN, lone surrogates, controls.
HOSTILE = st.sampled_from(
    [2**63, -(2**63) - 1, 2**80, float("nan"), float("inf"), "\ud800", "x\x1b]0;t\x07", ""]
)
VALUES = HOSTILE | HOSTILE | SCALARS | JSON
#: Nesting deeper than any handler should walk.
DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]
#: The fields each event reads: generated payloads aim at them.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    OpsEvent.PRINTERS_LIST: ("branch_id", "station", "status"),
    OpsEvent.PRINTER_GET: ("printer_id",),
    OpsEvent.PRINTER_CONFIGURE: (
        "printer_id", "name", "station", "station_priority", "paused", "default_expiry_s",
        "profile",
    ),
    OpsEvent.PRINTER_TEST: ("printer_id",),
    OpsEvent.JOB_SUBMIT: (
        "printer_id", "station", "branch_id", "document", "copies", "idempotency_key",
        "expires_in",
    ),
    OpsEvent.JOB_CANCEL: ("job_id", "reason"),
    OpsEvent.JOB_REPRINT: ("job_id", "idempotency_key", "printer_id"),
    OpsEvent.JOB_GET: ("job_id", "document"),
    OpsEvent.JOBS_LIST: ("status", "printer_id", "station", "since", "until", "limit"),
    OpsEvent.ALERTS_LIST: ("state", "since", "limit"),
    OpsEvent.ALERT_ACK: ("alert_id",),
    OpsEvent.STATIONS_LIST: ("branch_id",),
    OpsEvent.STATION_CONFIGURE: ("station", "branch_id", "printer_ids", "default_expiry_s"),
    OpsEvent.PRINTER_ADD: ("agent_id", "uri", "name", "station", "profile"),
}  # fmt: skip


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, Any]:
    """An event and a payload aimed at its fields (or, now and then, anything at all)."""
    event = draw(st.sampled_from(OPS_EVENTS))
    fields = (*EVENT_FIELDS.get(event, ()), "extra")
    if draw(st.integers(0, 4)) == 0:
        return event, draw(JSON)
    keys = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    return event, {key: draw(VALUES) for key in keys}


PAYLOADS = st.dictionaries(st.sampled_from(FIELDS), VALUES, min_size=1, max_size=4) | JSON


class HubThread:
    """A hub, an admin operator and an HTTP session on their own loop in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.data_dir = data_dir

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def start(self) -> None:
        self.hub: RunningHub = await start_hub(hub_settings(self.data_dir, ops_rate_limit=0))
        assert self.hub.hub.tokens is not None
        token = self.hub.hub.tokens.create(role="admin")
        self.ops = await OpsClient(self.hub.url, token).connect()
        self.http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        # Something to aim at: a printer its agent drives, a job, an open alert.
        self.agent = await RawAgent(
            self.hub.url, await self.hub.hub.create_license(), "box"
        ).connect()
        printer_id = (await self.agent.register("serial:GEN-1"))["printer_id"]
        await self.ops.call(
            OpsEvent.JOB_SUBMIT,
            {"printer_id": printer_id, "document": {"blocks": [{"type": "text", "text": "x"}]}},
        )
        await self.agent.call("printer:status", {"printer_id": printer_id, "status": "paper_out"})

    async def stop(self) -> None:
        await self.agent.close()
        await self.ops.close()
        await self.http.close()
        await self.hub.stop()

    async def rows(self) -> str:
        """Every row an operator's request could change, as one comparable text."""

        def read(db: Any) -> str:
            tables = ("printers", "jobs", "job_events", "alerts", "stations", "agents")
            return json.dumps(
                {t: [dict(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in tables},
                default=str,
            )

        return str(await self.hub.hub.db.read(read))

    async def ops_call(self, event: str, payload: Any) -> tuple[Any, str, str, Any]:
        before = await self.rows()
        answer = await self.ops.call(event, payload)
        after = await self.rows()
        alive = await self.ops.call(OpsEvent.WHOAMI, {})
        return answer, before, after, alive

    async def http_call(self, method: str, path: str, body: Any) -> tuple[int, Any, str, str, bool]:
        before = await self.rows()
        data = json.dumps(body, allow_nan=True).encode()
        async with self.http.request(
            method, self.hub.url + path, data=data, headers={"Content-Type": "application/json"}
        ) as resp:
            status = resp.status
            try:
                answer = await resp.json()
            except (ValueError, aiohttp.ContentTypeError):
                answer = await resp.text()
        after = await self.rows()
        async with self.http.get(self.hub.url + "/api/v1/printers") as resp:
            alive = resp.status == 200
        return status, answer, before, after, alive


@pytest.fixture(scope="module")
def hub_thread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubThread]:
    thread = HubThread(tmp_path_factory.mktemp("generated"))
    thread.run(thread.start())
    yield thread
    thread.run(thread.stop())
    thread.loop.call_soon_threadsafe(thread.loop.stop)
    thread.thread.join(timeout=10)


def well_formed_refusal(answer: Any) -> bool:
    return (
        isinstance(answer, dict)
        and answer.get("ok") is False
        and isinstance(answer.get("error"), dict)
        and answer["error"].get("code") in CODES
        and isinstance(answer["error"].get("message"), str)
    )


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(request=(OpsEvent.JOB_CANCEL, {"job_id": 2**63}))
@example(request=(OpsEvent.JOB_CANCEL, {"job_id": 1}))  # the agent's answer is not an object
@example(request=(OpsEvent.JOB_GET, {"job_id": -(2**64)}))
@example(request=(OpsEvent.JOB_CANCEL, {"job_id": 1, "reason": "\ud800"}))
@example(request=(OpsEvent.JOBS_LIST, {"since": float("nan")}))
@example(
    request=(
        OpsEvent.JOBS_LIST,
        {"limit": {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}},
    )
)
@given(request=requests())
def test_every_ops_event_answers_generated_input(
    hub_thread: HubThread, request: tuple[str, Any]
) -> None:
    event, payload = request
    answer, before, after, alive = hub_thread.run(hub_thread.ops_call(event, payload))
    assert alive["ok"], "the hub stopped serving"
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
    if not answer["ok"]:
        assert well_formed_refusal(answer), answer
        assert after == before, f"{event} was refused but changed rows: {answer}"


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    ident=st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.text(
            st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
            min_size=1,
            max_size=12,
        ),
    ),
    body=PAYLOADS,
)
def test_every_http_route_answers_generated_input(
    hub_thread: HubThread, route: tuple[str, str], ident: str, body: Any
) -> None:
    method, template = route
    status, answer, before, after, alive = hub_thread.run(
        hub_thread.http_call(method, template.format(id=ident), body)
    )
    assert alive, "the hub stopped serving"
    assert status < 500, (status, answer)
    if status >= 400:
        assert well_formed_refusal(answer) or status in (404, 405), (status, answer)
        assert after == before, f"{method} {template} was refused but changed rows"
