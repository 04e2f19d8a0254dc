"""The visibility matrix (owner, staff, another user, anonymous) over the list routes and the REST routes
that show a ticket's revisions, next to test_visibility_matrix.py's detail routes.

A ticket's record (its name, status, figures and revision list) is public in the lists whatever its status,
except a withdrawn ticket, which leaves every list (the API lists it when asked for by status); a revision's
verification details and files follow registry.tickets.selectors' one rule (can_see_revision)."""

from __future__ import annotations

from catalog_rows import make_ticket

from registry.tickets import services

WHO = ("owner", "staff", "other", "anonymous")



def _listed(clients, name: str, task: str) -> dict[str, dict[str, bool]]:
    pages = {"catalog": "/tickets/", "catalog-rejected": "/tickets/?status=rejected", "home": "/",
             "leaderboard": f"/tasks/{task}/", "my-tickets": "/me/tickets/"}
    api = {"api-list": "/api/v1/tickets/", "api-list-withdrawn": "/api/v1/tickets/?status=withdrawn",
           "api-list-rejected": "/api/v1/tickets/?status=rejected"}
    out: dict[str, dict[str, bool]] = {}
    for route, url in pages.items():
        out[route] = {}
        for who in WHO:
            response = clients[who].get(url)
            out[route][who] = response.status_code == 200 and f">{name}</a>" in response.content.decode()
    for route, url in api.items():
        out[route] = {who: any(r["name"] == name for r in clients[who].get(url).json()["results"]) for who in WHO}
    return out


REFUSED = (401, 403, 404, 410)


def _refused(clients, url: str) -> dict[str, int | None]:
    """The refusal each visitor gets (None: not refused; the catalog's rows here have no blob behind them)."""
    return {who: code if (code := clients[who].get(url).status_code) in REFUSED else None for who in WHO}


def _codes(clients, ticket) -> dict[str, dict[str, int]]:
    routes = {
        "api-ticket": f"/api/v1/tickets/{ticket.name}/",
        "api-revisions": f"/api/v1/tickets/{ticket.name}/revisions/",
        "api-latest": f"/api/v1/tickets/{ticket.name}/revisions/latest/",
        "badge": f"/badges/{ticket.name}.svg",
    }
    return {route: {who: clients[who].get(url).status_code for who in WHO} for route, url in routes.items()}


ALL = dict.fromkeys(WHO, True)
NONE = dict.fromkeys(WHO, False)
OWNER_STAFF = {"owner": True, "staff": True, "other": False, "anonymous": False}
#: "my tickets" asks for a login: the anonymous visitor is redirected, the others see only their own.
MINE = {"owner": True, "staff": False, "other": False, "anonymous": False}


def test_a_rejected_ticket_is_public_record_in_every_list_but_the_leaderboard(clients, task, owner):
    rejected = make_ticket("rejected-ticket", task=task, owner=owner, status="rejected", accuracy=0.4)
    assert _listed(clients, rejected.name, task.name) == {
        "catalog": ALL, "catalog-rejected": ALL, "home": NONE, "leaderboard": NONE, "my-tickets": MINE,
        "api-list": ALL, "api-list-withdrawn": NONE, "api-list-rejected": ALL,
    }
    assert _codes(clients, rejected) == {route: dict.fromkeys(WHO, 200) for route in
                                         ("api-ticket", "api-revisions", "api-latest", "badge")}
    # The REST download does not refuse an unpublished revision's files (the Hub protocol does: 401/403 in
    # test_visibility_matrix.py); tests/registry/test_submit.py downloads a pending one anonymously.
    assert _refused(clients, _file_url(rejected)) == dict.fromkeys(WHO)


def test_a_withdrawn_ticket_leaves_the_lists_and_its_files_are_its_owners_and_staffs(clients, task, owner):
    withdrawn = make_ticket("withdrawn-ticket", task=task, owner=owner, status="verified", accuracy=0.9)
    services.withdraw_ticket(withdrawn, reason="superseded")
    assert _listed(clients, withdrawn.name, task.name) == {
        "catalog": NONE, "catalog-rejected": NONE, "home": NONE, "leaderboard": NONE, "my-tickets": MINE,
        "api-list": NONE, "api-list-withdrawn": ALL, "api-list-rejected": NONE,
    }
    assert _refused(clients, _file_url(withdrawn)) == {"owner": None, "staff": None, "other": 410, "anonymous": 410}
    assert _codes(clients, withdrawn) == {route: dict.fromkeys(WHO, 200) for route in
                                          ("api-ticket", "api-revisions", "api-latest", "badge")}


def _file_url(ticket) -> str:
    return f"/api/v1/tickets/{ticket.name}/revisions/{ticket.latest_revision.commit}/files/config.json"


def test_the_unpublished_pull_hint_follows_the_rule(clients, task, owner):
    rejected = make_ticket("rejected-ticket", task=task, owner=owner, status="rejected", accuracy=0.4)
    shown = {who: "--include-unpublished" in clients[who].get(f"/tickets/{rejected.name}/").content.decode()
             for who in WHO}
    assert shown == OWNER_STAFF
    assert "As its moderator" in clients["staff"].get(f"/tickets/{rejected.name}/").content.decode()
