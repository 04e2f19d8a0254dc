"""The registry: a Django project (settings, urls) with one app per area.

Apps: ``accounts`` (users' API tokens), ``tickets`` (tasks, tickets, revisions, files, submission and the
REST API). Other areas plug in by existing: ``verifications``, ``hub``, ``catalog``, ``badges`` are added
to INSTALLED_APPS and to the URLconf when their package has an ``apps.py`` (see settings.OPTIONAL_APPS and
urls.py). The web process never imports torch.
"""
