"""Log filters. Particle still accepts `?access_token=` (particle-api.md §1), so a request line can carry a
live token; every log line that passes through here has the value replaced before it is written."""

from __future__ import annotations

import logging
import re

_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&;\s])access_token=)[^&;\s\"']*", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(lambda m: m.group(1) + REDACTED, text)


class RedactTokens(logging.Filter):
    """Replaces the value of every `access_token=` in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "access_token" in record.msg.lower():
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) and "access_token" in a.lower() else a
                                for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) and "access_token" in v.lower() else v
                           for k, v in record.args.items()}
        return True


# uvicorn writes its access log through its own handler, which our LOGGING setting does not reach.
SERVER_ACCESS_LOGGERS = ("uvicorn.access", "django.server")


def install() -> None:
    for name in SERVER_ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
