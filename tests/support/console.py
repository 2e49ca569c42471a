"""The console (server-rendered pages) through Django's test client."""

from __future__ import annotations


def signed_in(user):
    """A test client with `user` signed in (no password round trip)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client
