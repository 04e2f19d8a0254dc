"""Forms of the catalog pages: the catalog's filters (from the query string), sign-up, token creation and
the browser upload of a bundle (validated by the same service as the API)."""

from __future__ import annotations

from django import forms
from ticketclient.policy import OUTCOME_LABELS

from registry.tickets.models import Status
from registry.tickets.selectors import SORTS, TicketFilters

SORT_CHOICES = [
    ("accuracy", "verified accuracy (best first)"),
    ("density", "density (sparsest first)"),
    ("newest", "newest first"),
    ("downloads", "downloads (most first)"),
]
assert {key for key, _ in SORT_CHOICES} == set(SORTS), "catalog sort menu out of step with selectors.SORTS"

#: The status menu speaks the pages' vocabulary: the two kinds of verified ticket, then every status.
STATUS_CHOICES = [("", "any status"), ("winning", OUTCOME_LABELS["winning"]),
                  ("verified_not_winning", OUTCOME_LABELS["verified_not_winning"])] + [
    (s.value, s.label) for s in Status]
_OUTCOME_FILTERS = {"winning": True, "verified_not_winning": False}


class CatalogFilterForm(forms.Form):
    """The catalog's query string: ``q, task, arch, dmin, dmax (percent), status, verified, sort, page``."""

    q = forms.CharField(required=False, max_length=100, label="Search",
                        widget=forms.TextInput(attrs={"placeholder": "name, architecture, task or owner",
                                                      "type": "search"}))
    task = forms.CharField(required=False, max_length=64)
    arch = forms.CharField(required=False, max_length=64, label="Architecture")
    dmin = forms.FloatField(required=False, min_value=0, max_value=100, label="Density from (%)",
                            widget=forms.NumberInput(attrs={"step": "any", "placeholder": "0",
                                                           "aria-label": "density from (%)"}))
    dmax = forms.FloatField(required=False, min_value=0, max_value=100, label="to (%)",
                            widget=forms.NumberInput(attrs={"step": "any", "placeholder": "100",
                                                           "aria-label": "density to (%)"}))
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    verified = forms.BooleanField(required=False, label="verified only")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def clean(self):
        data = super().clean()
        if data.get("dmin") is not None and data.get("dmax") is not None and data["dmin"] > data["dmax"]:
            raise forms.ValidationError("The density range is empty: 'from' is larger than 'to'.")
        return data

    def to_filters(self) -> tuple[TicketFilters, bool]:
        """The filters for :func:`ticket_list`, and whether they contradict each other (no result).

        Fields that fail validation are left out (and reported by the page); the valid ones still apply.
        """
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        status = data.get("status") or ""
        winning = _OUTCOME_FILTERS.get(status)
        if winning is not None:
            status = Status.VERIFIED
        statuses: tuple[str, ...] = (status,) if status else ()
        empty = False
        if data.get("verified"):
            empty = bool(status) and status != Status.VERIFIED
            statuses = (Status.VERIFIED,)
        return TicketFilters(
            task=data.get("task") or None,
            architecture=data.get("arch") or None,
            density_min=data["dmin"] / 100 if data.get("dmin") is not None else None,
            density_max=data["dmax"] / 100 if data.get("dmax") is not None else None,
            statuses=statuses,
            search=(data.get("q") or "").strip() or None,
            sort=data.get("sort") or "newest",
            winning=winning,
        ), empty


class SignUpForm(forms.Form):
    username = forms.RegexField(regex=r"^[A-Za-z0-9_.-]{3,40}$", max_length=40,
                                help_text="3 to 40 letters, digits, '.', '_' or '-'.",
                                error_messages={"invalid": "Use 3 to 40 letters, digits, '.', '_' or '-'."})
    email = forms.EmailField(required=False, help_text="Optional; only for account recovery.")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class TokenForm(forms.Form):
    name = forms.RegexField(regex=r"^[A-Za-z0-9 _.:-]{1,64}$", max_length=64, label="Token name",
                            widget=forms.TextInput(attrs={"placeholder": "e.g. laptop or ci"}),
                            error_messages={"invalid": "Use 1 to 64 letters, digits, spaces or '_.:-'."})


class SubmitForm(forms.Form):
    """The three files of a bundle, as the API's multipart upload takes them (same service, same checks)."""

    config = forms.FileField(label="config.json", allow_empty_file=True,
                             widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}))
    init = forms.FileField(label="init.safetensors", allow_empty_file=True,
                           widget=forms.ClearableFileInput(attrs={"accept": ".safetensors"}))
    mask = forms.FileField(label="mask.safetensors", allow_empty_file=True,
                           widget=forms.ClearableFileInput(attrs={"accept": ".safetensors"}))
    name = forms.CharField(required=False, max_length=100, label="Ticket name",
                           help_text="Optional: defaults to the name in config.json. A new revision if it is yours.",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. lenet-mnist1d-3.6pct"}))
    message = forms.CharField(required=False, max_length=500, label="Revision message",
                              widget=forms.TextInput(attrs={"placeholder": "what changed (optional)"}))
