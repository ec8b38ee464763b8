"""Phase timings from the parent's clocks, without a sandbox."""
from __future__ import annotations

import json
import math
import os
import time

import pytest

from sandbox.runner.logs import ReportReader
from sandbox.runner.timing import phase_seconds, plausible


def test_phases_run_from_their_marks_to_the_reaping():
    assert phase_seconds({"fit": 0.5, "recommend": 2.0}, 3.0, completed=True) == (1.5, 1.0)


@pytest.mark.parametrize("marks", [{}, {"fit": 1.0}, {"fit": 2.0, "recommend": 1.0},
                                   {"fit": -1.0, "recommend": 1.0}, {"fit": 0.1, "recommend": 99.0}])
def test_a_completed_run_without_usable_marks_is_charged_its_wall_time(marks):
    assert phase_seconds(marks, 3.0, completed=True) == (None, 3.0)


def test_a_run_that_ended_during_fit_has_fit_time_only():
    assert phase_seconds({"fit": 1.0}, 3.0, completed=False) == (2.0, None)


@pytest.mark.parametrize("value", [-3223.0, math.nan, math.inf, 4.0, "1.0", True, None])
def test_impossible_reported_durations_are_rejected(value):
    assert plausible(value, wall=3.0) is None


def test_report_reader_stamps_the_first_arrival_of_each_phase():
    r, w = os.pipe()
    reader = ReportReader(r, limit=1 << 16)
    before = time.monotonic()
    os.write(w, (json.dumps({"event": "phase", "phase": "fit"}) + "\n").encode())
    time.sleep(0.2)
    line = (json.dumps({"event": "phase", "phase": "recommend"}) + "\n").encode()
    os.write(w, line[:7])  # a line split over two writes
    os.write(w, line[7:])
    time.sleep(0.3)
    repeated = time.monotonic()
    os.write(w, line)  # a later (forged) repeat must not move the first mark
    os.close(w)
    assert reader.join(5)
    fit, rec = reader.marks["fit"], reader.marks["recommend"]
    assert before <= fit < rec < repeated and rec - before >= 0.2
