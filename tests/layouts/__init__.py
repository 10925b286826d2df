"""Small archives in each dataset's official layout, built in memory for tests.

Each module ``tests.layouts.<dataset>`` has ``archive_files() -> dict[str, bytes]``:
file name (as in the dataset module's ``REMOTES``) -> the bytes of a tiny archive
in the official layout (a few tracks, seconds of synthetic audio), built
deterministically. ``tests/test_dataset_downloads.py`` serves them from a local
HTTP server; each dataset's own test checks its index, labels and splits.
"""
