"""Running the per-image jobs of a preparation tool, in one or several processes."""
from typing import Any, Callable, List, Optional, Sequence

Progress = Optional[Callable[[int, int], None]]


def run_jobs(func: Callable[[Any], Any], jobs: Sequence[Any], nproc: int = 1,
             progress: Progress = None) -> List[Any]:
    """``[func(job) for job in jobs]``, in ``nproc`` processes, in order.

    Args:
        func: A picklable function of one job.
        jobs: The jobs.
        nproc: Worker processes (1: in this process).
        progress: Called with ``(done, total)`` after every job.

    Returns:
        The results, in the order of ``jobs``.
    """
    results: List[Any] = []

    def collect(result: Any) -> None:
        results.append(result)
        if progress:
            progress(len(results), len(jobs))

    if nproc > 1:
        from multiprocessing import Pool
        with Pool(nproc) as pool:
            for result in pool.imap(func, jobs, chunksize=8):
                collect(result)
    else:
        for job in jobs:
            collect(func(job))
    return results
