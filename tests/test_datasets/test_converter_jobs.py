"""run_jobs: the results of every job in order, in one or two processes, with progress."""
import operator

import pytest

from mmseg_maskformer.datasets.converters.jobs import run_jobs


@pytest.mark.parametrize('nproc', [1, 2])
def test_results_in_order_and_progress(nproc):
    calls = []
    jobs = [(i, 3) for i in range(20)]
    results = run_jobs(_power, jobs, nproc, lambda done, total: calls.append((done, total)))
    assert results == [i**3 for i in range(20)]
    assert calls == [(done, 20) for done in range(1, 21)]


def _power(job):
    return operator.pow(*job)
