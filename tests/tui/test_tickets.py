"""The typed ticket (``n``): what is wrong with a draft is said in words before the
hub is asked; a station wins over a printer of the same name; two printers with one
name need a branch; the document is text blocks every operator may print."""

from __future__ import annotations

import pytest

from pm_tui.data.state import FleetState
from pm_tui.tickets import TicketDraft, TicketError, ticket_payload


def fleet() -> FleetState:
    state = FleetState()
    for pid, name, station, branch in (
        (1, "Kitchen-1", "kitchen", 1),
        (2, "Bar", "bar", 1),
        (3, "Bar", None, 2),
    ):
        state.put_printer(
            {"id": pid, "name": name, "station": station, "branch_id": branch, "status": "online"}
        )
    return state


def test_a_draft_becomes_a_job_submit_payload() -> None:
    payload, where = ticket_payload(
        TicketDraft(target="Kitchen-1", lines="2x Burger\n1x Fries\n", title="TABLE 7", copies="3"),
        fleet(),
        None,
    )
    assert where == "Kitchen-1"
    assert payload["printer_id"] == 1 and payload["copies"] == 3
    texts = [b.get("text") for b in payload["document"]["blocks"]]
    assert texts == ["TABLE 7", None, "2x Burger", "1x Fries", None]
    assert payload["document"]["blocks"][0]["bold"] is True
    assert payload["document"]["blocks"][-1] == {"type": "cut"}
    assert "raw_base64" not in payload["document"]


def test_a_station_by_name_and_the_branch_shown() -> None:
    payload, where = ticket_payload(TicketDraft(target="BAR", lines="soup"), fleet(), 1)
    assert payload == {**payload, "station": "bar", "branch_id": 1} and "printer_id" not in payload
    assert where == "station bar"


@pytest.mark.parametrize(
    ("draft", "branch", "said"),
    [
        (TicketDraft(target="Kitchen-1", lines="  \n"), None, "type at least one line"),
        (TicketDraft(target="", lines="soup"), None, "say where it prints"),
        (TicketDraft(target="Patio", lines="soup"), None, "no station or printer called Patio"),
        (TicketDraft(target="Kitchen-1", lines="soup", copies="11"), None, "copies: 1 to 10"),
        (TicketDraft(target="Kitchen-1", lines="soup", copies="two"), None, "must be a number"),
        (TicketDraft(target="Kitchen-1", lines="x\n" * 61), None, "at most 60 lines"),
    ],
)
def test_what_is_wrong_is_said(draft: TicketDraft, branch: int | None, said: str) -> None:
    with pytest.raises(TicketError, match=said):
        ticket_payload(draft, fleet(), branch)


def test_two_printers_of_one_name_need_a_branch() -> None:
    state = fleet()
    state.printers[2]["station"] = None  # no station "bar" any more: printers only
    with pytest.raises(TicketError, match="2 printers are called Bar"):
        ticket_payload(TicketDraft(target="Bar", lines="soup"), state, None)
    payload, _where = ticket_payload(TicketDraft(target="Bar", lines="soup"), state, 2)
    assert payload["printer_id"] == 3
