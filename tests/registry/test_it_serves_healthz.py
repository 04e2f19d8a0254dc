import pytest


@pytest.mark.django_db
def test_it_answers_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok"
    assert body["cache"] == "LocMemCache"  # the test settings' local-memory cache
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_it_says_degraded_when_the_broker_or_cache_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    settings.CACHES = {"default": {"BACKEND": "registry.common.cache.ResilientRedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/1",
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    # (changing CACHES makes Django's test signals rebuild the cache handler)
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["broker"].startswith("unavailable") and body["cache"].startswith("unavailable")
