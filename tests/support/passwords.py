"""Password hashing in tests.

Production hashes with Argon2 (settings.PASSWORD_HASHERS), which costs ~50 ms a password; the suite creates
thousands of users and customers, so every test hashes with MD5 (tests/conftest.py, autouse) unless it is marked
`@pytest.mark.real_password_hashing`, which keeps the production hashers (the tests that check real hashing).
"""

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MARKER = "real_password_hashing"
