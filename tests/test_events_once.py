"""devices/events.py `events_publish_once`: a durable task's announcement goes out once, even when a slow run
and its requeued twin announce at the same moment (real Redis, real threads)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from devices import events
from tests.support.presence import clear_presence

pytestmark = pytest.mark.django_db(transaction=True)  # the bus routes device events from their rows


def test_runs_racing_to_announce_the_same_decision_publish_it_once():
    clear_presence()
    device_id = "0123456789abcdef01234567"
    for attempt in range(20):
        name = f"onboarding:race-{attempt}"
        start = threading.Barrier(8)
        sent = []

        def announce():
            start.wait()
            try:
                sent.append(events.events_publish_once({name: [events.event_make(
                    device_id=device_id, name="spark/status", data=f"online {attempt}")]}))
            finally:
                connection.close()  # the thread's pooled connection goes back (the bus routes from the DB)

        threads = [threading.Thread(target=announce) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(sent) == [0] * 7 + [1], (attempt, sent)
    published = [e["data"] for e in events.device_events_recent(device_id, 100)]
    assert sorted(published) == sorted(f"online {n}" for n in range(20))
    clear_presence()


def test_an_announcement_made_before_is_not_made_again():
    clear_presence()
    batch = {"onboarding:again": [events.event_make(device_id="ab" * 12, name="spark/status", data="online")]}
    assert events.events_publish_once(batch) == 1
    assert events.events_publish_once(batch) == 0
    assert [e["data"] for e in events.device_events_recent("ab" * 12, 10)] == ["online"]
    clear_presence()
