"""Progress lines of long command-line jobs (dataset preparation)."""
from typing import Callable


def progress_printer(unit: str = 'images', prefix: str = '') -> Callable[[int, int], None]:
    """A ``(done, total)`` callback printing ``  [prefix: ]done/total unit``.

    A line is printed about every 5% of the work and at the end.

    Args:
        unit: What is counted, e.g. ``'images'`` or ``'label maps'``.
        prefix: Printed before the counts, e.g. the split name.
    """
    lead = f'{prefix}: ' if prefix else ''

    def report(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            print(f'  {lead}{done}/{total} {unit}', flush=True)

    return report
