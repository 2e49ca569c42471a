"""MFA in tests: enrolling a person through the services, and TOTP codes for the steps around now.

A code works once (its time step is remembered), and only within one step of now, so a test gets three
usable codes from one `steps()` call: the previous step's, the current one's and the next one's. `steps()`
first waits out the last seconds of a step, so the three stay inside the window while the test runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyotp

STEP = 30
MARGIN = 6  # seconds a test may take between computing a code and the server checking it


@dataclass
class Steps:
    previous: str
    current: str
    next: str


def steps(secret: str) -> Steps:
    """The codes of the previous, current and next time steps (after waiting out a step's last seconds)."""
    left = STEP - time.time() % STEP
    if left < MARGIN:
        time.sleep(left + 0.1)
    totp, now = pyotp.TOTP(secret), time.time()
    return Steps(previous=totp.at(now - STEP), current=totp.at(now), next=totp.at(now + STEP))


def wrong_code(secret: str) -> str:
    """A six-digit code that none of the steps around now has."""
    totp, now = pyotp.TOTP(secret), time.time()
    taken = {totp.at(now + k * STEP) for k in (-2, -1, 0, 1, 2)}
    return next(c for c in (f"{n:06d}" for n in range(1000000)) if c not in taken)


def enrol(user) -> tuple[str, list[str]]:
    """Turn MFA on for `user` with the previous step's code (so the current and next ones stay usable);
    returns (secret, recovery codes)."""
    from console.services import mfa as mfa_services

    enrolment = mfa_services.mfa_enrol_begin(user=user)
    codes = mfa_services.mfa_enrol_confirm(user=user, mfa_token=enrolment.mfa_token,
                                           otp=steps(enrolment.secret).previous, ip="127.0.0.1")
    return enrolment.secret, codes
