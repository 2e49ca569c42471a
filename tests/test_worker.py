"""A real Celery worker (in-process thread, real broker) delivers the team-invite email after commit."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from console.celery import app
from console.tasks import purge_expired_tokens
from products.services import product_team
from console.teams import team_invite
from console.scoping import Principal
from tests.factories import UserFactory


@pytest.fixture
def worker(transactional_db):
    app.control.purge()  # drop messages left by earlier runs on this broker
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_invite_email_is_sent_by_the_worker(cast, worker):
    invitee = UserFactory(email="new.member@example.com")
    team_invite(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                username=invitee.email, role="Support")
    assert wait_for(lambda: any("new.member@example.com" in m.to for m in mail.outbox)), "no email delivered"
    message = next(m for m in mail.outbox if "new.member@example.com" in m.to)
    assert "Trackers" in message.subject and "Support" in message.body


@pytest.mark.django_db(transaction=True)
def test_purge_expired_tokens_task(cast, worker):
    from console.models import AccessToken

    AccessToken.objects.filter(user=cast.viewer).update(expires_at="2001-01-01T00:00:00Z")
    result = purge_expired_tokens.delay()
    assert result.id
    assert wait_for(lambda: not AccessToken.objects.filter(user=cast.viewer).exists())
