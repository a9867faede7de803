"""progress_printer: a line about every 5% of the work and at the end."""
from mmseg_maskformer.utils.progress import progress_printer


def test_lines_every_twentieth_and_at_the_end(capsys):
    report = progress_printer('label maps', 'val')
    for done in range(1, 45):
        report(done, 44)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f'  val: {d}/44 label maps' for d in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
                                                          22, 24, 26, 28, 30, 32, 34, 36, 38,
                                                          40, 42, 44)]


def test_small_jobs_print_every_step_without_prefix(capsys):
    report = progress_printer()
    for done in range(1, 4):
        report(done, 3)
    assert capsys.readouterr().out.splitlines() == ['  1/3 images', '  2/3 images', '  3/3 images']
