"""Settings of the registry, flat and read from the environment.

Every knob has a default that suits the local one-command run (SQLite under ``var/``, files under
``var/media``, a filesystem Celery broker under ``var/broker``); tests and production set:

- ``DJANGO_SECRET_KEY``       required with ``DJANGO_HTTPS=1`` (production); otherwise a random key is generated
  once into ``var/secret_key``. ``DJANGO_HTTPS=1``: HTTPS redirect, secure cookies, HSTS (``check --deploy`` clean)
- ``DATABASE_URL``            postgres://user@host:5432/name (default: sqlite at var/hub.sqlite3)
- ``TICKETHUB_STORAGE``       ``fs`` (default, MEDIA_ROOT) or ``s3`` (django-storages, the AWS_* variables below)
- ``AWS_STORAGE_BUCKET_NAME``, ``AWS_S3_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_S3_REGION_NAME``, ``AWS_S3_ADDRESSING_STYLE`` (``path`` for MinIO/moto), ``TICKETHUB_S3_PREFIX``
- ``CELERY_BROKER_URL``       redis://... (default: kombu's filesystem transport under var/broker);
  ``VERIFIER_BROKER_PREFIX`` and ``VERIFIER_QUEUE`` are shared with the verifier (verifier/config.py)
- ``CACHE_URL`` / ``REDIS_URL`` a Redis cache for throttling (default: local memory)
- ``TICKETHUB_MAX_UPLOAD_BYTES`` the largest request body accepted (413 before the body is read)
- bundle limits: ``ticketclient.validation.Limits.from_env()`` (read at use, see tickets/limits.py)
- ``TICKETHUB_THROTTLE_ANON``, ``_USER``, ``_SUBMIT``, ``_TOKENS``, ``_SIGNUP`` DRF rates like ``100/min`` (per
  account), ``_SUBMIT_IP``, ``_TOKENS_IP``, ``_SIGNUP_IP`` (per client IP); ``TICKETHUB_NUM_PROXIES`` proxies
  in front (for the client IP); ``TICKETHUB_MAX_TOKENS_PER_USER``, ``TICKETHUB_MAX_QUEUED_PER_USER`` caps
- ``TEST_DB_SUFFIX``          gives a pytest run its own test database (test_lottery_hub_<suffix>)
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from ticketclient.constants import env_bool, env_list  # the one set of env parsing helpers

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TICKETHUB_VAR_DIR") or BASE_DIR / "var")


DEBUG = env_bool("DJANGO_DEBUG", False)
#: The site is served over HTTPS (TLS ends at a proxy in front): HTTPS redirect, secure cookies and HSTS
#: default on, and the secret key must come from the environment. ``manage.py check --deploy`` is clean
#: with DJANGO_HTTPS=1, DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS set (tests/registry/test_deploy_settings.py).
HTTPS = env_bool("DJANGO_HTTPS", False)


def _local_secret_key(var_dir: Path) -> str:
    """A random key generated once and kept in the var dir (mode 0600): the local run and the tests have no
    secret in their environment, and a key written in the source would be the same for everyone."""
    import secrets

    path = var_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # a concurrent process wrote it first
        return path.read_text().strip()
    except OSError:  # a read-only image (a worker node): this process's own key (nothing it signs persists)
        return key
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


if os.environ.get("DJANGO_SECRET_KEY"):
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
elif HTTPS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (from the environment) when DJANGO_HTTPS is on.")
else:
    SECRET_KEY = _local_secret_key(VAR_DIR)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # health checks probe plain HTTP from inside
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS") or (31_536_000 if HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", HTTPS)

# --- applications -------------------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "registry.accounts",
    "registry.tickets",
    "registry.verifications",
    "registry.hub",
    "registry.catalog",
    "registry.badges",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Under /api/ every error is the JSON {error, field, detail}; unhandled exceptions are logged.
    "registry.common.middleware.ApiJsonErrorsMiddleware",
    # Control characters in the URL or query, chunked bodies without a length: refused first.
    "registry.common.middleware.RequestSanityMiddleware",
    # Refuse an oversized body from its Content-Length, before anything reads it.
    "registry.common.middleware.UploadLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------------------

#: pytest sets PYTEST_VERSION: tests default to the PostgreSQL and Redis on loopback, never SQLite.
UNDER_PYTEST = bool(os.environ.get("PYTEST_VERSION"))
if UNDER_PYTEST:
    _default_database_url = "postgres://postgres@127.0.0.1:5432/lottery_hub"
else:
    _default_database_url = f"sqlite:///{VAR_DIR / 'hub.sqlite3'}"  # the embedded default of the local run
    if not os.environ.get("DATABASE_URL"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or _default_database_url,
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
        # A persistent connection is checked before each request reuses it: after a database restart the
        # first request on each thread reconnects instead of answering 500.
        conn_health_checks=True,
    )
}
DATABASES["default"]["TEST"] = {"NAME": "test_lottery_hub_" + os.environ.get("TEST_DB_SUFFIX", "main")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache (throttling) -------------------------------------------------------------------------------

_cache_url = os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL")
if _cache_url:
    # A Redis outage degrades to "no cache" (misses, dropped writes, throttles open) instead of 500s, and a
    # hung Redis costs a request at most the socket timeouts: see registry/common/cache.py.
    _cache_timeout_s = float(os.environ.get("CACHE_SOCKET_TIMEOUT_S", "0.5"))
    CACHES = {
        "default": {
            "BACKEND": "registry.common.cache.ResilientRedisCache",
            "LOCATION": _cache_url,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "tickethub"),
            "OPTIONS": {"socket_connect_timeout": _cache_timeout_s, "socket_timeout": _cache_timeout_s},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A per-process layer in front of the shared cache for the Hub routes' hottest entries (file manifests,
# model-card sizes): a warm model info or resolve makes no cache round trip. Its entries live
# TICKETHUB_HUB_MEMO_SECONDS (0: off), so another worker sees an admin's re-save of a record that late.
CACHES["local"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tickethub-local",
                   "OPTIONS": {"MAX_ENTRIES": 4096}}
TICKETHUB_HUB_MEMO_SECONDS = float(os.environ.get("TICKETHUB_HUB_MEMO_SECONDS", "10"))

# --- storage ------------------------------------------------------------------------------------------

MEDIA_ROOT = Path(os.environ.get("TICKETHUB_MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("TICKETHUB_STATIC_ROOT") or VAR_DIR / "static")
# Serve app static files (Swagger UI from drf-spectacular-sidecar, admin) without collectstatic unless
# production turns it off after running collectstatic.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)

TICKETHUB_STORAGE = os.environ.get("TICKETHUB_STORAGE", "fs").strip().lower()
if TICKETHUB_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("AWS_STORAGE_BUCKET_NAME", "tickethub"),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
            "location": os.environ.get("TICKETHUB_S3_PREFIX", ""),
            # Content-addressed keys: the same name always holds the same bytes.
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
elif TICKETHUB_STORAGE == "fs":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
else:
    raise ValueError(f"TICKETHUB_STORAGE must be 'fs' or 's3', got {TICKETHUB_STORAGE!r}")

STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- uploads ------------------------------------------------------------------------------------------

#: Largest request body accepted at all; larger Content-Lengths get 413 before the body is read. Unset
#: (None): derived from ticketclient's Limits (config + two tensor files + 1 MiB of multipart overhead),
#: see registry.tickets.limits.max_request_bytes. Per-file limits are checked before a file is read.
TICKETHUB_MAX_UPLOAD_BYTES = int(os.environ["TICKETHUB_MAX_UPLOAD_BYTES"]) if os.environ.get(
    "TICKETHUB_MAX_UPLOAD_BYTES") else None
# Non-file form fields (name, message) are small; files over this size spill to a temporary file.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("FILE_UPLOAD_MAX_MEMORY_SIZE", str(8 * 1024 * 1024)))
# The per-file limits are enforced while a part streams in (registry/tickets/uploads.py), then parts
# stay in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE and spill to a temporary file beyond.
FILE_UPLOAD_HANDLERS = [
    "registry.tickets.uploads.PartLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
DATA_UPLOAD_MAX_NUMBER_FILES = 10

# --- Celery (producer side only: the web process enqueues, the verifier's workers consume) -------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or (
    "redis://127.0.0.1:6379/0" if UNDER_PYTEST else "filesystem://"
)
CELERY_BROKER_PREFIX = os.environ.get("VERIFIER_BROKER_PREFIX", "")
VERIFIER_QUEUE = os.environ.get("VERIFIER_QUEUE") or "verify"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(os.environ.get("TICKETHUB_BROKER_DIR") or VAR_DIR / "broker")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # exchange tables; kombu's default is ./control in the working directory
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": CELERY_BROKER_PREFIX} if CELERY_BROKER_PREFIX else {}
#: Seconds an enqueue may spend connecting to the broker before it gives up (the verifier's sweep picks up
#: pending revisions whose message never made it).
CELERY_ENQUEUE_TIMEOUT_S = float(os.environ.get("CELERY_ENQUEUE_TIMEOUT_S", "5"))

# --- auth and API -------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "registry.common.parsers.StrictJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "registry.common.pagination.PagePagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
        "registry.common.throttling.ScopedIPRateThrottle",
    ],
    # Per account (scope) and per client IP (scope_ip): registry/common/throttling.py.
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("TICKETHUB_THROTTLE_ANON", "300/min"),
        "user": os.environ.get("TICKETHUB_THROTTLE_USER", "1200/min"),
        "submit": os.environ.get("TICKETHUB_THROTTLE_SUBMIT", "60/hour"),
        "submit_ip": os.environ.get("TICKETHUB_THROTTLE_SUBMIT_IP", "120/hour"),
        "tokens": os.environ.get("TICKETHUB_THROTTLE_TOKENS", "60/hour"),
        "tokens_ip": os.environ.get("TICKETHUB_THROTTLE_TOKENS_IP", "120/hour"),
        "signup": os.environ.get("TICKETHUB_THROTTLE_SIGNUP", "20/hour"),
        "signup_ip": os.environ.get("TICKETHUB_THROTTLE_SIGNUP_IP", "20/hour"),
    },
    # Client IP for the per-IP rates: REMOTE_ADDR, or the X-Forwarded-For entry added by our own proxies.
    "NUM_PROXIES": int(os.environ.get("TICKETHUB_NUM_PROXIES", "0")),
    "EXCEPTION_HANDLER": "registry.common.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

#: Active API tokens one account may hold, and its submissions waiting for (or in) verification.
TICKETHUB_MAX_TOKENS_PER_USER = int(os.environ.get("TICKETHUB_MAX_TOKENS_PER_USER", "20"))
TICKETHUB_MAX_QUEUED_PER_USER = int(os.environ.get("TICKETHUB_MAX_QUEUED_PER_USER", "10"))

SPECTACULAR_SETTINGS = {
    "TITLE": "Open lottery-ticket hub API",
    "DESCRIPTION": (
        "Submit, list and download lottery tickets (sparse trainable subnetworks). Every submission is "
        "retrained by the verifier before it is published. Authenticate with `Authorization: Bearer <token>`.\n\n"
        "## Hugging Face Hub read protocol\n\n"
        "Published tickets are also served by the routes `huggingface_hub` reads, so "
        "`hf_hub_download(repo_id=NAME, filename=..., endpoint=HUB)`, `snapshot_download`, `ModelCard.load` "
        "and `HfApi(endpoint=HUB).model_info(NAME)` work against this hub (plain Django views outside this "
        "schema; errors carry huggingface_hub's `X-Error-Code` header):\n\n"
        "| method | path | answer |\n| --- | --- | --- |\n"
        "| GET | `/api/models?search=&author=&sort=&limit=` | published tickets as model infos (paged by `Link`) |\n"
        "| GET | `/api/models/{name}` and `/api/models/{name}/revision/{rev}` | model info: `sha` (the commit), "
        "`siblings` with each file's size and sha256, `cardData` |\n"
        "| GET | `/api/models/{name}/tree/{rev}` | the files of a revision |\n"
        "| GET, HEAD | `/{name}/resolve/{rev}/{path}` | a file; `X-Repo-Commit`, `ETag` = sha256, "
        "`Content-Length` |\n\n"
        "`rev` is `main` (the served revision), a 40-hex commit or `verified`. The files are `config.json`, "
        "`init.safetensors`, `mask.safetensors`, the generated `verification.json` (policy, decision, runs and "
        "seeds) and `README.md` (the model card). Unpublished or withdrawn revisions answer 404 "
        "`RevisionNotFound` unless the owner's token asks for them."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"TicketStatusEnum": "registry.tickets.models.Status.choices"},
    # Every operation documents its error answers (the one {error, field, detail} shape).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "registry.common.schema.add_error_responses",
    ],
}

# --- i18n, logging ------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "registry": {"handlers": ["console"], "level": os.environ.get("TICKETHUB_LOG_LEVEL", "INFO")},
        # Unhandled exceptions (500s) with their tracebacks, to stderr, whatever DEBUG is.
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}
