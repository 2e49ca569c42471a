"""Django settings for Cyan. Every value comes from the environment (read here and nowhere else).

With no environment at all the project runs on SQLite and an embedded Redis it starts itself, so
`make run` needs nothing installed; DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from console.datadir import private_dir, private_file, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # optional; absent on a fresh clone

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or env.str("SECRET_KEY_FILE", default="")
if SECRET_KEY and Path(SECRET_KEY).is_file():
    SECRET_KEY = Path(SECRET_KEY).read_text().strip()
DATA_DIR = Path(env.str("CYAN_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
if not SECRET_KEY:
    SECRET_KEY = secret_key(private_dir(DATA_DIR))

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Links in emails. `make run` serves on CYAN_PORT (default 8000), so the default follows it.
PUBLIC_URL = env.str("PUBLIC_URL", default=f"http://127.0.0.1:{env.int('CYAN_PORT', default=8000)}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "console",
    "products",
    "devices",
    "integrations",
    "billing",
]

MIDDLEWARE = [
    "console.api.ratelimit.RateLimitMiddleware",  # first: a refused request costs no session or database work
    "console.api.middleware.RejectNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "console.web.middleware.CurrentAccountMiddleware",
    "console.web.middleware.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.web.context.shell",
            ],
            "builtins": ["console.templatetags.icons"],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'cyan.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    private_dir(DATA_DIR)
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        private_file(Path(DATABASES["default"]["NAME"]))
    # WAL lets the web process read while a worker writes; the busy timeout rides out short locks.
    # Tests get a file too, not Django's shared-cache in-memory database: the gateway, the Celery worker and the
    # test share it from several threads, and shared-cache table locks fail at once (SQLITE_LOCKED) where a
    # file database in WAL mode waits out the busy timeout, as the embedded default does in production.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 20,
         "transaction_mode": "IMMEDIATE"}
    )
else:
    # A connection pool per process (psycopg_pool, Django >= 5.1), not persistent connections: under ASGI each
    # request runs in a thread of its own, so CONN_MAX_AGE kept one PostgreSQL connection per finished request's
    # thread until PostgreSQL refused new clients (bench/gateway.py calls: "too many clients" at 50 requests/s),
    # and opening one per request costs a backend start each time.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=1), "max_size": env.int("DB_POOL_MAX", default=10),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "console.User"

# --- Redis: cache, lockouts, broker, pub/sub --------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    from console.embedded_redis import ensure_embedded_redis, socket_url

    _sock = ensure_embedded_redis(DATA_DIR)
    REDIS_URL = socket_url(_sock, 0)
    CELERY_BROKER_URL = f"redis+socket://{_sock}?virtual_host=1"
    CACHE_URL = socket_url(_sock, 2)
else:
    _base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.rstrip("/").count("/") > 2 else REDIS_URL.rstrip("/")
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=f"{_base}/1")
    CACHE_URL = f"{_base}/2"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="cyan"),
    }
}

# --- Device gateway (devices/gateway, docs/device-protocol.md) ---------------------------------------------
DEVICE_REQUEST_TIMEOUT = env.float("DEVICE_REQUEST_TIMEOUT", default=30.0)  # function/variable answer, then 408
GATEWAY_HOST = env.str("GATEWAY_HOST", default="0.0.0.0")
GATEWAY_PORT = env.int("GATEWAY_PORT", default=5683)  # Device OS always dials 5683 over TCP
GATEWAY_FLUSH_SECONDS = env.float("GATEWAY_FLUSH_SECONDS", default=15.0)  # last_heard to Redis and the rows
GATEWAY_IDLE_TIMEOUT = env.float("GATEWAY_IDLE_TIMEOUT", default=40.0)  # silence before a device is dropped
GATEWAY_HANDSHAKE_TIMEOUT = env.float("GATEWAY_HANDSHAKE_TIMEOUT", default=20.0)
GATEWAY_HEARTBEAT_TTL = env.int("GATEWAY_HEARTBEAT_TTL", default=15)  # a gateway silent this long is reaped
GATEWAY_MAX_HANDSHAKES_PER_ADDRESS = env.int("GATEWAY_MAX_HANDSHAKES_PER_ADDRESS", default=500)
GATEWAY_MAX_HANDSHAKES_PER_SECOND = env.float("GATEWAY_MAX_HANDSHAKES_PER_SECOND", default=1000.0)  # per process
GATEWAY_MAX_MESSAGES_PER_SECOND = env.int("GATEWAY_MAX_MESSAGES_PER_SECOND", default=200)  # per connection
GATEWAY_DB_THREADS = env.int("GATEWAY_DB_THREADS", default=4)
DEVICE_SERVER_HOST = env.str("DEVICE_SERVER_HOST", default="127.0.0.1")  # the address in the server key file
# The server's RSA-2048 key pair (PEM); empty: `server_key.pem` in DATA_DIR, made on first use (devices/keys.py)
DEVICE_SERVER_KEY_FILE = env.str("DEVICE_SERVER_KEY_FILE", default="")

# --- Events (devices/events.py, devices/streams.py, docs/api.md "Events") ----------------------------------
# Event data a publish may carry (bytes). Gen 2 Device OS sends at most 1024 (MAX_EVENT_DATA_LENGTH); newer
# devices allow 16 KB, so a fleet of those raises this.
EVENT_DATA_MAX_BYTES = env.int("EVENT_DATA_MAX_BYTES", default=1024)
EVENTS_BUS_LENGTH = env.int("EVENTS_BUS_LENGTH", default=100_000)  # the bus stream every reader follows
# A stream that reconnects with Last-Event-ID is sent what it missed from the last this-many events of its
# audience (a user's, a customer's, a product's or an organization's events); an audience with no event for
# EVENTS_REPLAY_SECONDS is forgotten.
EVENTS_REPLAY_LENGTH = env.int("EVENTS_REPLAY_LENGTH", default=10_000)
EVENTS_REPLAY_SECONDS = env.int("EVENTS_REPLAY_SECONDS", default=3600)
EVENTS_KEEPALIVE_SECONDS = env.float("EVENTS_KEEPALIVE_SECONDS", default=9.0)  # api-js gives up after 15 s
EVENTS_MAX_STREAMS_PER_ADDRESS = env.int("EVENTS_MAX_STREAMS_PER_ADDRESS", default=100)  # open at once
EVENTS_SUBSCRIBER_BACKLOG = env.int("EVENTS_SUBSCRIBER_BACKLOG", default=10_000)  # then the stream is closed
# Past this many streams in one web process, events are sent in batches at most this far apart, so each stream
# wakes once for several events (bench/events.py fanout: a write per stream per event saturated the process).
EVENTS_COALESCE_ABOVE = env.int("EVENTS_COALESCE_ABOVE", default=200)
EVENTS_COALESCE_SECONDS = env.float("EVENTS_COALESCE_SECONDS", default=0.03)

# --- Integrations: webhook delivery (integrations/delivery.py, docs/api.md "Integrations") ------------------
INTEGRATIONS_TIMEOUT_SECONDS = env.float("INTEGRATIONS_TIMEOUT_SECONDS", default=20.0)  # Particle's 20 s
INTEGRATIONS_BODY_LIMIT = env.int("INTEGRATIONS_BODY_LIMIT", default=100_000)  # response bytes read (Particle)
INTEGRATIONS_CONCURRENCY = env.int("INTEGRATIONS_CONCURRENCY", default=200)  # open connections per process
# Retries: after the n-th failed attempt wait base * 2^(n-1) s (capped), half of it random; at most
# INTEGRATIONS_MAX_ATTEMPTS attempts, then the delivery is a dead letter (replayable).
INTEGRATIONS_MAX_ATTEMPTS = env.int("INTEGRATIONS_MAX_ATTEMPTS", default=6)
INTEGRATIONS_RETRY_BASE_SECONDS = env.float("INTEGRATIONS_RETRY_BASE_SECONDS", default=30.0)
INTEGRATIONS_RETRY_MAX_SECONDS = env.float("INTEGRATIONS_RETRY_MAX_SECONDS", default=3600.0)
# A claim older than this belongs to a dead worker (must exceed the timeout); pending rows due this long
# ago lost their message. Both are re-sent by beat's integrations.requeue_stale.
INTEGRATIONS_CLAIM_STALE_SECONDS = env.float("INTEGRATIONS_CLAIM_STALE_SECONDS", default=60.0)
INTEGRATIONS_REQUEUE_AFTER_SECONDS = env.float("INTEGRATIONS_REQUEUE_AFTER_SECONDS", default=30.0)
# The per-hostname throttle (integrations/throttle.py)
INTEGRATIONS_THROTTLE_MIN_ERRORS = env.int("INTEGRATIONS_THROTTLE_MIN_ERRORS", default=3)
INTEGRATIONS_THROTTLE_RECOVERY_SECONDS = env.float("INTEGRATIONS_THROTTLE_RECOVERY_SECONDS", default=5.0)
INTEGRATIONS_THROTTLE_WINDOW_SECONDS = env.float("INTEGRATIONS_THROTTLE_WINDOW_SECONDS", default=60.0)
INTEGRATIONS_SLEEP_SECONDS = env.float("INTEGRATIONS_SLEEP_SECONDS", default=30.0)  # a sleeping delivery waits
INTEGRATIONS_MAX_SLEEPS = env.int("INTEGRATIONS_MAX_SLEEPS", default=20)  # then it is a dead letter
# Receivers on private, loopback or link-local addresses are refused unless allowed (integrations/targets.py)
INTEGRATIONS_ALLOW_PRIVATE_TARGETS = env.bool("INTEGRATIONS_ALLOW_PRIVATE_TARGETS", default=False)
INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS = env.list("INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS", default=[])

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="cyan")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

# --- Auth -----------------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("email", "first_name", "last_name")}},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# --- Transport security (production sits behind TLS; the embedded default is plain HTTP on 127.0.0.1) --
_HTTPS = PUBLIC_URL.startswith("https://")
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=False)
if env.bool("BEHIND_TLS_PROXY", default=False):  # the proxy terminates TLS and says so in X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): the console loads scripts, styles and images from itself only. Inline
# style attributes stay allowed (progress bars, group colours, htmx's indicator style); scripts never inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "console:login"

# Particle's numbers (particle-api.md, "Numbers").
CYAN_TOKEN_DEFAULT_LIFETIME = 7_776_000  # 90 days, in seconds
CYAN_REFRESH_TOKEN_LIFETIME = 14 * 24 * 3600
CYAN_LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)  # per client address
CYAN_ACCOUNT_FAILURE_LIMIT = env.int("ACCOUNT_FAILURE_LIMIT", default=10)  # per account, from any address
# Reverse proxies in front of Cyan (addresses or networks, comma-separated): only a connection from one of
# these may say in X-Forwarded-For where the client is (console/clientaddr.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
CYAN_LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=30 * 60)
# Anyone may make an account (POST /v1/users, /signup/); false = invitation links only (private installs).
SIGNUP_OPEN = env.bool("SIGNUP_OPEN", default=True)
# How long a mailed password-reset link works (seconds); it also dies as soon as the password changes.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=24 * 3600)
# How long a team invitation to someone without an account stays open.
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)

# MFA (TOTP): how long the `mfa_token` of a 403 mfa_required lives, and how many wrong codes (TOTP or recovery)
# lock the second step of one account for LOGIN_LOCKOUT_SECONDS.
CYAN_MFA_TOKEN_SECONDS = env.int("MFA_TOKEN_SECONDS", default=5 * 60)
CYAN_MFA_FAILURE_LIMIT = env.int("MFA_FAILURE_LIMIT", default=10)

# API rate limits per client address (console/api/ratelimit.py): bucket -> (requests, window seconds).
# RATE_LIMITS overrides some of them, e.g. "oauth-token=50/300,api=20000/300".
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
CYAN_RATE_LIMITS = {
    "api": (10_000, 300),  # every /v1 and /oauth request
    "oauth-token": (100, 300),
    "access-tokens": (100, 300),
    "sign-up": (100, 300),
    "account-delete": (100, 300),
    "password-reset": (100, 300),
    "events": (100, 300),
}
for _item in env.list("RATE_LIMITS", default=[]):
    _name, _, _value = _item.partition("=")
    _match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", _value)
    if _name.strip() not in CYAN_RATE_LIMITS or not _match or int(_match[2]) < 1:
        raise ImproperlyConfigured(f"RATE_LIMITS: {_item!r} is not <bucket>=<requests>/<seconds> with a bucket "
                                   f"among {', '.join(CYAN_RATE_LIMITS)}")
    CYAN_RATE_LIMITS[_name.strip()] = (int(_match[1]), int(_match[2]))

# --- i18n, static, email --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
# collectstatic fills it for production; whitenoise also serves from the apps (below) and warns at every start
# when the directory is missing, so it always exists.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from the apps in development and tests

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = DATA_DIR / "mail"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Cyan <noreply@localhost>")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))

# --- REST framework & OpenAPI ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["console.api.authentication.ParticleTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["console.api.permissions.IsAuthenticatedPrincipal"],
    "DEFAULT_PARSER_CLASSES": [
        "console.api.parsers.DepthLimitedJSONParser",
        "console.api.parsers.BracketFormParser",
        "console.api.parsers.BracketMultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "console.api.errors.particle_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "console.api.schema.ParticleAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cyan API",
    "DESCRIPTION": (
        "A self-hosted, wire-compatible implementation of the Particle Cloud API. Authenticate with "
        "`Authorization: Bearer <token>` from `POST /oauth/token`. Errors are always "
        '`{"error", "error_description"}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "console.logfilters.RedactTokens"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_tokens"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Imports post up to 200,000 ids in one body (particle-api.md §6.2): raise Django's request limits to match.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16_000_000
DATA_UPLOAD_MAX_NUMBER_FIELDS = 250_000
