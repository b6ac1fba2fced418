"""The shipped metric conformance suite, run against every built-in metric."""

from __future__ import annotations

import pytest

from promptlathe.metrics import METRIC_NAMES, Metric, get_metric
from promptlathe.testing.metrics import *  # noqa: F403 (the suite)
from promptlathe.testing.metrics import SAMPLE_TARGETS


@pytest.fixture(params=METRIC_NAMES)
def metric(request: pytest.FixtureRequest) -> Metric:
    return get_metric(request.param, SAMPLE_TARGETS)
