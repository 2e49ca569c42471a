"""Shared test support: helpers, builders and registries that test modules import (never each other).

Import-light on purpose: `tests.support.isolation` is loaded as a pytest plugin before Django's settings,
so this package must not import Django at import time.
"""
