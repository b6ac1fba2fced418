"""The shipped exporter conformance suite, run against every registered format."""

from __future__ import annotations

import pytest

from promptlathe.exporters import Exporter, exporter_names, get_exporter
from promptlathe.testing.exporters import *  # noqa: F403 (the suite)


@pytest.fixture(params=exporter_names())
def exporter(request: pytest.FixtureRequest) -> Exporter:
    return get_exporter(request.param)
