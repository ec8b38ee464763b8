"""The best-so-far curve of `agenticrs history`."""
from designer.cli.plot import best_so_far, curve


def test_best_so_far_keeps_the_running_maximum_and_skips_failures():
    assert best_so_far([0.1, None, 0.05, 0.2, None]) == [0.1, 0.1, 0.1, 0.2, 0.2]


def test_the_curve_spans_every_value_and_labels_the_range():
    text = curve([0.07, 0.14, 0.14, 0.217], width=60, height=4, ascii_only=True)
    lines = text.splitlines()
    assert lines[0].startswith("0.2170") and lines[3].startswith("0.0700")
    assert lines[0].endswith("#") and "4 experiments" in lines[-1]
    assert len(curve(list(range(200)), width=50).splitlines()[0].split("|")[1]) == 50
