"""The shipped proposer conformance suite, run against APE and OPRO."""

from __future__ import annotations

import pytest

from promptlathe.proposers import APEProposer, OPROProposer
from promptlathe.testing.proposers import *  # noqa: F403 (the suite)


@pytest.fixture(params=[APEProposer, OPROProposer], ids=["ape", "opro"])
def make_proposer(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.param
