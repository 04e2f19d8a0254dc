"""The submit page's upload form: for signed-in users, the same service and the same messages as the API."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile


def _files(bundle, **override):
    parts = {"config": bundle.config, "init": bundle.init, "mask": bundle.mask, **override}
    names = {"config": "config.json", "init": "init.safetensors", "mask": "mask.safetensors"}
    return {k: SimpleUploadedFile(names[k], v) for k, v in parts.items()}


def test_anonymous_visitors_are_asked_to_log_in(client, db):
    html = client.get("/submit/").content.decode()
    assert "to upload a bundle from the browser" in html and 'id="upload-form"' not in html
    response = client.post("/submit/", {})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_upload_creates_the_ticket_and_opens_its_page(client, owner, make_bundle):
    from registry.tickets.models import Ticket

    client.force_login(owner)
    assert 'id="upload-form"' in client.get("/submit/").content.decode()
    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[16], density=0.25, seed=1, accuracy=0.3)
    response = client.post("/submit/", {"name": "web-upload", **_files(bundle)})
    assert response.status_code == 302
    ticket = Ticket.objects.get(name="web-upload")
    assert response["Location"] == f"/tickets/web-upload/?revision={ticket.latest_revision.commit}"
    assert ticket.owner == owner and ticket.status == "pending"


def test_a_bad_upload_shows_the_apis_own_message(client, owner, owner_client, make_bundle):
    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[16], density=0.25, seed=1, accuracy=0.3)
    bad = {"mask": bundle.init}  # the init's float tensors where the boolean mask belongs
    api = owner_client.post("/api/v1/tickets/", {"name": "bad-one", **_files(bundle, **bad)}, format="multipart")
    assert api.status_code == 400
    client.force_login(owner)
    page = client.post("/submit/", {"name": "bad-one", **_files(bundle, **bad)})
    assert page.status_code == 400
    from django.utils.html import escape

    html = page.content.decode()
    assert escape(api.json()["detail"]) in html
    # shown on the mask field, as the API's ``field`` says
    mask_field = html[html.index('for="id_mask"'):].split("</p>", 1)[0]
    assert escape(api.json()["detail"]) in mask_field and api.json()["field"].startswith("mask")
