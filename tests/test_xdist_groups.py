"""The suite's own plumbing: `make test` runs with ``--dist loadgroup``, and the tests of an ``xdist_group``
must reach one worker, or each worker builds the group's module worlds again (pytest 9.2 renamed the node id
attribute pytest-xdist 3.8 appends the group to, which silently made every group a set of single tests)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("suite_plumbing")


def test_a_grouped_test_carries_its_group_in_the_id_the_scheduler_splits_on(request):
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs under pytest-xdist with --dist loadgroup (make test)")
    assert request.node.nodeid.endswith("@suite_plumbing"), request.node.nodeid
