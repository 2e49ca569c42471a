"""A real Celery worker (in-process thread, real broker) delivers the team-invite email after commit."""

from __future__ import annotations


import pytest
from django.core import mail

from console.celery import app
from console.tasks import purge_expired_tokens
from products.services import product_team
from console.services.teams import team_invite
from console.scoping import Principal
from tests.factories import UserFactory
from tests.support.polling import wait_for
from tests.support.worker import running_celery_worker
from tests.support.presence import connect


@pytest.fixture
def worker(transactional_db):
    with running_celery_worker():
        yield


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


@pytest.mark.django_db(transaction=True)
def test_background_import_job_runs_on_the_worker(cast, worker):
    from devices.selectors.jobs import import_job_progress
    from devices.services.jobs import import_job_create
    from devices.models import Device, ImportJob
    from tests.support.fleet import ids, manufacture

    made = manufacture(13, 40)
    text = "\n".join(ids(made) + ["garbage-line"])
    job = import_job_create(principal=Principal.for_user(cast.owner), product=cast.product, text=text)
    assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).state == ImportJob.State.DONE), \
        ImportJob.objects.get(pk=job.pk).state
    job.refresh_from_db()
    assert job.report["updated"] == 40 and job.report["rejected"][0]["line"] == 41
    assert import_job_progress(job) == (41, 41)
    assert Device.objects.filter(product=cast.product).count() == 40


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_or_dead_job_is_harmless(cast):
    """A second delivery of the same message is skipped; a job whose worker died is put back and rerun."""
    from datetime import timedelta

    from django.utils import timezone

    from devices.services.jobs import import_job_run, import_jobs_requeue_stale
    from devices.models import Device, ImportJob
    from tests.support.fleet import ids, manufacture

    made = manufacture(13, 5)
    job = ImportJob.objects.create(product=cast.product, created_by=cast.owner, lines="\n".join(ids(made)), total=5)
    assert import_job_run(job.pk) == "done"
    assert import_job_run(job.pk) == "skipped"  # redelivered: already claimed and finished
    # A worker that died mid-import: the job is 'running' with an old claim and nothing was committed.
    dead = ImportJob.objects.create(product=cast.product, created_by=cast.owner, lines=ids(manufacture(13, 1))[0],
                                    total=1, state=ImportJob.State.RUNNING,
                                    claimed_at=timezone.now() - timedelta(hours=1))
    app.control.purge()
    assert import_jobs_requeue_stale() == 1
    assert ImportJob.objects.get(pk=dead.pk).state == ImportJob.State.PENDING
    assert import_job_run(dead.pk) == "done"
    assert Device.objects.filter(product=cast.product).count() == 6


@pytest.mark.django_db(transaction=True)
def test_transfer_request_and_decision_emails_go_through_the_worker(cast, worker):
    from devices.services import claims as services
    from devices.services import transfers
    from tests.support.fleet import manufacture

    device_id = manufacture(12, 1)[0].device_id
    keeper, asker = UserFactory(email="keeper@example.com"), UserFactory(email="asker@example.com")
    connect(device_id)  # claiming by id needs the device online
    services.device_claim(principal=Principal.for_user(keeper), device_id=device_id)
    outcome = services.device_claim(principal=Principal.for_user(asker), device_id=device_id, request_transfer=True)
    assert wait_for(lambda: any("keeper@example.com" in m.to for m in mail.outbox)), "the owner was not told"
    transfers.device_transfer_decide(principal=Principal.for_user(keeper), transfer_id=outcome.transfer.pk,
                                    approve=True)
    assert wait_for(lambda: any("asker@example.com" in m.to for m in mail.outbox)), "the asker was not told"
    told = next(m for m in mail.outbox if "asker@example.com" in m.to)
    assert "approved" in told.subject and device_id in told.body
