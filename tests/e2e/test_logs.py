"""Structured logs: JSON lines when not on a terminal, and the correlation id of the
request or job a line is about, on the hub and on the agent."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from pm_agent.agent import Agent
from pm_core.logs import correlation, setup_logging
from pm_hub.server import RunningHub
from tests.support.helpers import OpsClient, eventually, receipt_doc


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was (setup_logging replaces its handlers)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_a_jobs_log_lines_on_hub_and_agent_carry_its_correlation_id(
    hub: RunningHub, ops: OpsClient, agent: Agent, admin_token: str, root_logging: None
) -> None:
    """From submit to result, every line about the job (hub: accepted, sent, in the
    spool, completed; agent: accepted, printing, printed) carries the id its
    ``job:submit`` ack gave; /ops and HTTP requests carry a request id."""
    stream = io.StringIO()
    setup_logging("DEBUG", stream=stream, json_format=True)
    await eventually(lambda: len(hub.hub.printers) == 2, what="printers")
    printer_id = next(iter(hub.hub.printers))
    await ops.call("printers:list", {})
    ack = await ops.call("job:submit", {"printer_id": printer_id, "document": receipt_doc("L")})
    job_id, cid = ack["job"]["id"], ack["job"]["correlation_id"]
    await ops.wait_for("job:update", lambda j: j["id"] == job_id and j["status"] == "completed")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{hub.url}/api/v1/printers", headers={"Authorization": f"Bearer {admin_token}"}
        ) as resp,
    ):
        assert resp.status == 200
    logging.getLogger().handlers[:] = []

    lines = json_lines(stream)
    about = [line for line in lines if re.search(rf"\bjob {job_id}\b", line["msg"])]
    assert about, lines[-20:]
    untagged = [line for line in about if line.get("correlation_id") != cid]
    assert not untagged, untagged
    hub_said = " | ".join(line["msg"] for line in about if line["logger"].startswith("pm_hub"))
    agent_said = " | ".join(line["msg"] for line in about if line["logger"].startswith("pm_agent"))
    for words in ("accepted for printer", "sent to agent", "in the spool of agent", "completed"):
        assert words in hub_said, hub_said
    for words in ("accepted into the spool", "printing on", "printed on"):
        assert words in agent_said, agent_said

    def request_line(start: str) -> dict[str, Any]:
        return next(line for line in lines if line["msg"].startswith(start))

    assert re.fullmatch(
        r"ops_\d+_\d+_[0-9a-f]+", request_line("printers:list from")["correlation_id"]
    )
    assert re.fullmatch(
        r"http_\d+_\d+_[0-9a-f]+", request_line("HTTP GET /api/v1/printers")["correlation_id"]
    )


def test_logs_are_json_lines_unless_on_a_terminal(root_logging: None) -> None:
    """A pipe or file (journald, docker) gets one JSON object per line; a terminal gets
    readable text, the correlation id in brackets."""
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        setup_logging("INFO", stream=pipe)
        with correlation("test_1795627463176_1_d693e517"):
            logging.getLogger("pm_hub.example").info("paper is %s", "low")
    with os.fdopen(read_end) as reader:
        (line,) = reader.read().splitlines()
    entry = json.loads(line)
    assert entry["msg"] == "paper is low" and entry["level"] == "info"
    assert entry["logger"] == "pm_hub.example"
    assert entry["correlation_id"] == "test_1795627463176_1_d693e517"

    controller, terminal = os.openpty()
    try:
        with os.fdopen(terminal, "w") as tty:
            setup_logging("INFO", stream=tty)
            with correlation("test_1795627463176_2_d693e517"):
                logging.getLogger("pm_hub.example").warning("cover %s", "open")
            tty.flush()
            text = os.read(controller, 4096).decode()
    finally:
        os.close(controller)
    assert not text.lstrip().startswith("{")
    assert "WARNING" in text and "pm_hub.example: cover open" in text
    assert "[test_1795627463176_2_d693e517]" in text
