"""Fixtures shared by the tests of the core: a database seeded with a known history."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compliance.report.conftest import Seeded, seed


@pytest.fixture
def seeded(database: Any, store: Any, probe_plugin: type) -> Seeded:
    """Scans over weeks through the real engine, exceptions and breaches (see report/conftest.py)."""
    return seed(database, store)
