"""Particle's platform ids (Device OS PLATFORM_ID). The data migration loads this list; support staff
can add to it in the admin."""

# (id, slug, name, connectivity, generation, deprecated)
PLATFORMS = [
    (0, "core", "Core", "wifi", 1, True),
    (3, "virtual", "Virtual device", "wifi", 2, False),  # Device OS's Linux build (hal/src/gcc)
    (6, "photon", "Photon", "wifi", 2, True),
    (8, "p1", "P1", "wifi", 2, True),
    (10, "electron", "Electron / E-Series", "cellular", 2, True),
    (12, "argon", "Argon", "wifi", 3, False),
    (13, "boron", "Boron", "cellular", 3, False),
    (15, "esomx", "E SoM X", "cellular", 3, False),
    (22, "asom", "A SoM", "wifi", 3, True),
    (23, "bsom", "B SoM (B4xx)", "cellular", 3, False),
    (25, "b5som", "B5 SoM (B5xx)", "cellular", 3, False),
    (26, "tracker", "Tracker SoM / Tracker One", "cellular", 3, False),
    (28, "trackerm", "Tracker M", "cellular", 4, False),
    (32, "p2", "P2 / Photon 2", "wifi", 4, False),
    (35, "msom", "M SoM (M-Series)", "cellular", 4, False),
]


def load_platforms(platform_model=None) -> None:
    """Insert or refresh the catalogue (the data migration and test setup both call this)."""
    if platform_model is None:
        from products.models import Platform as platform_model
    for pid, slug, name, connectivity, generation, deprecated in PLATFORMS:
        platform_model.objects.update_or_create(
            id=pid, defaults=dict(slug=slug, name=name, connectivity=connectivity, generation=generation,
                                  deprecated=deprecated))
