"""The registry: a Django project (settings, urls) with one app per area.

Apps: ``accounts`` (users' API tokens), ``tickets`` (tasks, tickets, revisions, files, submission and the
REST API), ``verifications`` (records written only by the verifier's workers), ``hub`` (the Hugging Face
read protocol), ``catalog`` (web pages), ``badges``. The web process never imports torch.
"""
