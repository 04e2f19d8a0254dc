"""Every published revision serves a Hugging Face model card (README.md) over the Hub protocol: listed with
its sha256 like the other files, deterministic, and readable by ``huggingface_hub.ModelCard.load``."""

from __future__ import annotations

import hashlib

import pytest
from catalog_rows import commit_for, make_ticket


def test_the_model_card_is_listed_served_and_covered_by_its_sha256(client, tickets):
    name = tickets["verified"].name
    info = client.get(f"/api/models/{name}/revision/main").json()
    siblings = {s["rfilename"]: s for s in info["siblings"]}
    assert "README.md" in siblings
    tree = {e["path"]: e for e in client.get(f"/api/models/{name}/tree/main").json()}
    assert tree["README.md"]["oid"] == siblings["README.md"]["lfs"]["sha256"]
    first = client.get(f"/{name}/resolve/main/README.md")
    again = client.get(f"/{name}/resolve/{commit_for(name, 1)}/README.md")
    assert first["Content-Type"].startswith("text/markdown")
    body = b"".join(first.streaming_content) if first.streaming else first.content
    assert body == (b"".join(again.streaming_content) if again.streaming else again.content)  # deterministic
    assert hashlib.sha256(body).hexdigest() == siblings["README.md"]["lfs"]["sha256"] == first["ETag"].strip('"')
    assert int(first["Content-Length"]) == siblings["README.md"]["size"] == len(body)
    listing = client.get("/api/models", {"search": name}).json()
    listed = {s["rfilename"]: s for s in listing[0]["siblings"]}
    assert listed["README.md"]["lfs"]["sha256"] == siblings["README.md"]["lfs"]["sha256"]


def test_the_card_has_front_matter_verdict_controls_dense_recipe_and_pull(client, tickets):
    name = tickets["verified"].name
    text = client.get(f"/{name}/resolve/main/README.md").content.decode()
    front, body = text.split("---\n", 2)[1:]
    assert 'license: "unknown"' in front and "library_name: ticketclient" in front
    assert '- "mnist1d"' in front and "model-index:" in front and "value: 0.982" in front
    assert "## Verdict" in body and "**Winning ticket.**" in body
    assert "| dense parent (its own init, every weight) | 98.70% |" in body
    assert "## Compared with the dense network" in body and "ticket − dense: -0.50 pp" in body
    assert "| iterations | 4000 |" in body
    assert f'ticketclient.pull("{name}", revision="{commit_for(name, 1)}", endpoint="http://testserver")' in body


def test_a_not_winning_card_says_why_and_provenance_reads_as_text(client, task, owner):
    make_ticket("close-ticket", task=task, owner=owner, density=0.1, accuracy=0.55, claimed=0.55, dense=0.62)
    text = client.get("/close-ticket/resolve/main/README.md").content.decode()
    assert "**Verified, not winning.**" in text and "does not match its dense parent" in text
    assert "tolerance 2.0 pp" in text and "+2.0 pp" not in text
    assert "| rates | 20% per round (output layer 10%) |" in text and "| dense_test_accuracy | 62.0% |" in text
    assert 'outcome: "verified_not_winning"' in text and '- "verified-not-winning"' in text


def test_a_rejected_card_for_its_owner_says_it_is_not_published(client, tickets, owner):
    from django.test import Client

    from registry.accounts.services import create_token

    key = create_token(user=owner, name="card").key
    owner_client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_TICKET_INCLUDE_UNPUBLISHED="1")
    text = owner_client.get("/rejected-ticket/resolve/main/README.md").content.decode()
    assert "**Rejected.**" in text and "threshold 88.00%" in text
    assert "it is not published" in text and "--include-unpublished" in text
    assert "winning" not in text.lower()


def test_unpublished_revisions_serve_no_card(client, tickets):
    assert client.get("/api/models/pending-ticket/revision/main").status_code == 404
    assert client.get("/pending-ticket/resolve/main/README.md").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_huggingface_hub_loads_the_card_from_the_hub(live_server, owner, tmp_path, monkeypatch):
    from catalog_rows import make_task
    from huggingface_hub import ModelCard, constants, hf_hub_download

    task = make_task("mnist1d", baseline=0.62)
    make_ticket("card-ticket", task=task, owner=owner, density=0.036, accuracy=0.61, claimed=0.6, dense=0.62)
    # ModelCard.load has no endpoint argument: it reads HF_ENDPOINT, which these constants hold
    monkeypatch.setattr(constants, "ENDPOINT", live_server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        live_server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    card = ModelCard.load("card-ticket", token=False)
    assert card.data.license == "unknown" and card.data.library_name == "ticketclient"
    assert card.data.datasets == ["mnist1d"] and "lottery-ticket" in card.data.tags
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results["verified test accuracy (median of 3 runs)"] == 0.61
    assert results["dense parent test accuracy"] == 0.62
    assert card.data.to_dict()["lottery_ticket"]["outcome"] == "winning"
    assert "## Compared with the dense network" in card.text
    # the snippet on the ticket page: hf_hub_download with the endpoint in code
    path = hf_hub_download("card-ticket", "README.md", endpoint=live_server.url, token=False,
                           cache_dir=str(tmp_path / "direct"))
    assert open(path, encoding="utf-8").read().endswith(card.text)
