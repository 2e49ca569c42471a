"""ASGI entry point (uvicorn): one process serves the console, the API and, later, SSE streams."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_asgi_application()
