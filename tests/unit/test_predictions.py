"""Predictions are recorded before the run, in the lab's home, and graded as recorded: a prediction changed
after the result exists is noticed, a symbolic link is never written through, and the watermark checker gives
specific feedback for every wrong shape."""

import json
import math
import os
import re
import stat
import time

import numpy as np
import pandas as pd
import pytest

from labkit import settings as settings_mod
from labkit.exercises import Feedback, check_watermark_prediction, predictions
from labkit.exercises.solutions import SOLUTIONS

NAME = "watermark_prediction"
RIGHT = {"fewest_late": 30, "fastest_results": 0, "late_share_5s": 0.9}
WRONG = {"fewest_late": 0, "fastest_results": 30, "late_share_5s": 0.2}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A lab home of this test's own: predictions land in tmp_path, never in the user's real home."""
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    settings_mod.get.cache_clear()
    yield tmp_path / "home"
    settings_mod.get.cache_clear()


def result(late=(375, 354, 0), wait=(0.5, 4.5, 30.5), **extra):
    return pd.DataFrame({"delay_s": [0, 5, 30], "late": list(late), "wait_s": list(wait), **extra})


def not_yet(fb):
    assert isinstance(fb, Feedback) and not fb.ok, fb
    assert "data-state='fail'" in fb._repr_html_()
    return fb


def passed(fb):
    assert isinstance(fb, Feedback) and fb.ok, fb
    return fb


# ---- recording ----------------------------------------------------------------------------------------------
def test_record_stores_json_with_the_time_mode_0600_and_shows_when(home):
    shown = predictions.record(NAME, RIGHT)
    path = home / "predictions" / f"{NAME}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["value"] == RIGHT and data["locked_at"] is None
    assert abs(data["recorded_at"] - time.time()) < 60
    html = shown._repr_html_()
    assert re.search(r"🔒 prediction recorded at \d\d:\d\d:\d\d: ", html)
    assert "fewest_late" in html and "labkit-check" not in html  # not a checker's verdict: CI must not count it
    assert shown.ok and "🔒 prediction recorded at" in repr(shown)


def test_recording_again_before_the_run_replaces_it(home):
    predictions.record(NAME, WRONG)
    shown = predictions.record(NAME, RIGHT)
    assert shown.ok and "replaces" in shown.message
    assert predictions.recorded(NAME).value == RIGHT
    passed(check_watermark_prediction(RIGHT, result()))


def test_a_prediction_changed_after_lock_is_noticed_and_graded_as_recorded(home):
    predictions.record(NAME, WRONG)
    locked = predictions.lock(NAME)  # the experiment cell, right after the run
    assert locked.ok and "counts" in locked.message
    changed = predictions.record(NAME, RIGHT)  # after seeing the result
    assert not changed.ok and "already exists" in changed.message and "noticed" in changed.message
    assert predictions.recorded(NAME).value == WRONG  # what counts for this run did not change
    fb = not_yet(check_watermark_prediction(RIGHT, result()))
    assert "You recorded" in fb.message and "now say" in fb.message and "graded as recorded" in fb.message
    assert "fewest_late" in fb.message  # the recorded prediction is what was graded


def test_the_recorded_prediction_passes_even_if_the_current_one_is_wrong_and_says_so(home):
    predictions.record(NAME, RIGHT)
    predictions.lock(NAME)
    fb = passed(check_watermark_prediction(WRONG, result()))
    assert "graded as recorded" in fb.message


def test_without_lock_the_first_check_locks_and_a_later_change_is_noticed(home):
    run1 = result()
    predictions.record(NAME, WRONG)
    not_yet(check_watermark_prediction(WRONG, run1))  # seeing the result locks the recording
    assert predictions.recorded(NAME).locked
    assert not predictions.record(NAME, RIGHT).ok  # noticed
    fb = not_yet(check_watermark_prediction(RIGHT, run1))  # same run: the recorded one is graded
    assert "graded as recorded" in fb.message
    # the experiment runs again (a new result): the prediction recorded since the last run counts for it
    run2 = result(late=(380, 350, 0))
    passed(check_watermark_prediction(RIGHT, run2))
    assert predictions.recorded(NAME).value == RIGHT


def test_lock_makes_a_prediction_recorded_after_the_previous_run_count_for_the_next(home):
    predictions.record(NAME, WRONG)
    predictions.lock(NAME)
    predictions.record(NAME, RIGHT)  # after run 1: counts for run 2 only
    predictions.lock(NAME)  # run 2
    rec = predictions.recorded(NAME)
    assert rec.value == RIGHT and rec.later is None
    fb = passed(check_watermark_prediction(RIGHT, result()))
    assert "You recorded" not in fb.message


def test_recording_the_locked_value_again_changes_nothing_and_clears_the_notice(home):
    predictions.record(NAME, RIGHT)
    predictions.lock(NAME)
    predictions.record(NAME, WRONG)
    again = predictions.record(NAME, RIGHT)
    assert again.ok and "unchanged" in again.message
    assert predictions.recorded(NAME).later is None


def test_a_lock_without_a_recording_marks_a_later_one_as_after_the_run(home):
    shown = predictions.lock(NAME)
    assert not shown.ok and "no prediction was recorded" in shown.message
    assert not predictions.record(NAME, RIGHT).ok
    fb = passed(check_watermark_prediction(RIGHT, result()))
    assert "after the run" in fb.message


def test_no_recording_grades_the_current_prediction_with_a_note_and_writes_nothing(home):
    fb = passed(check_watermark_prediction(RIGHT, result()))
    assert "Not recorded before the run" in fb.message and "trade-off" in fb.message
    assert not (home / "predictions" / f"{NAME}.json").exists()


def test_numpy_numbers_and_tuples_compare_equal_to_their_recording(home):
    predictions.record(NAME, {"fewest_late": np.int64(30), "fastest_results": np.int32(0), "late_share_5s": 0.9})
    predictions.lock(NAME)
    fb = passed(check_watermark_prediction(RIGHT, result()))
    assert "now say" not in fb.message


def test_odd_values_are_recorded_never_raised(home):
    for odd in [None, "30", math.nan, object(), b"x", (1, 2), {1, 2}, pd.DataFrame()]:
        shown = predictions.record(NAME, odd)
        assert shown.ok, odd


def test_a_bad_name_is_refused_and_nothing_is_written_outside(home):
    for bad in ["../evil", "a/b", "", "Watermark", None, 3]:
        shown = predictions.record(bad, RIGHT)
        assert not shown.ok and "not a prediction name" in shown.message
    assert not (home / "evil.json").exists() and not (home.parent / "evil.json").exists()


# ---- symbolic links are refused, never followed -------------------------------------------------------------
def test_a_symlink_where_the_file_would_go_is_not_followed(home, tmp_path):
    (home / "predictions").mkdir(parents=True)
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours")
    link = home / "predictions" / f"{NAME}.json"
    link.symlink_to(target)
    shown = predictions.record(NAME, RIGHT)
    assert not shown.ok and "symbolic link" in shown.message
    assert target.read_text() == "not yours" and link.is_symlink()
    assert not predictions.lock(NAME).ok and target.read_text() == "not yours"
    fb = not_yet(check_watermark_prediction(RIGHT, result()))
    assert "symbolic link" in fb.message and target.read_text() == "not yours"
    with pytest.raises(Exception, match="symbolic link"):
        predictions.recorded(NAME)


def test_a_dangling_symlink_is_not_created_through(home, tmp_path):
    (home / "predictions").mkdir(parents=True)
    target = tmp_path / "would-be-created.json"
    (home / "predictions" / f"{NAME}.json").symlink_to(target)
    assert not predictions.record(NAME, RIGHT).ok
    assert not target.exists()


def test_a_symlinked_predictions_folder_is_refused(home, tmp_path):
    home.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "predictions").symlink_to(outside, target_is_directory=True)
    shown = predictions.record(NAME, RIGHT)
    assert not shown.ok and "symbolic link" in shown.message
    assert os.listdir(outside) == []


# ---- the watermark checker: wrong answers of every shape ----------------------------------------------------
def test_the_solution_passes_with_the_measured_share(home):
    fb = passed(check_watermark_prediction(SOLUTIONS[NAME], result()))
    assert "trade-off" in fb.message and "late at 5 s / late at 0 s" in fb.message and "94%" in fb.message


def test_the_prediction_without_the_share_still_passes(home):
    passed(check_watermark_prediction({"fewest_late": 30, "fastest_results": 0}, result()))


@pytest.mark.parametrize(
    "prediction, words",
    [
        (None, "as a dict"),
        ("30", "as a dict"),
        ([30, 0], "as a dict"),
        ({"fewest_late": None, "fastest_results": None}, "fill in fewest_late and fastest_results"),
        ({"fewest_late": 30}, "fill in fastest_results"),
    ],
)
def test_wrong_overall_shapes(home, prediction, words):
    assert words in not_yet(check_watermark_prediction(prediction, result())).message.lower()


@pytest.mark.parametrize(
    "delay, words",
    [
        ("30", "the string '30'"),
        ("30s", "the string '30s'"),
        (10, "not one of the run's delays [0, 5, 30]"),
        (30.5, "not one of the run's delays"),
        (True, "not one of the run's delays"),
        (math.nan, "not one of the run's delays"),
    ],
)
def test_wrong_delays(home, delay, words):
    fb = not_yet(check_watermark_prediction({"fewest_late": delay, "fastest_results": 0}, result()))
    assert words in fb.message.lower() and "fewest_late" in fb.message


@pytest.mark.parametrize(
    "share, words",
    [
        (80, "looks like a percentage: give a share, 0.8"),
        (94.4, "looks like a percentage"),
        (-0.2, "between 0 and 1"),
        (250, "between 0 and 1"),
        ("0.8", "the string '0.8'"),
        (math.nan, "a number between 0 and 1"),
        ([0.8], "a number between 0 and 1"),
    ],
)
def test_wrong_shares(home, share, words):
    fb = not_yet(check_watermark_prediction({**RIGHT, "late_share_5s": share}, result()))
    assert words in fb.message.lower()


def test_wrong_predictions_name_what_the_run_disagrees_with(home):
    r = result()
    assert "fastest_results" in not_yet(check_watermark_prediction({**RIGHT, "fastest_results": 30}, r)).message
    fb = not_yet(check_watermark_prediction({**RIGHT, "fewest_late": 0}, r))
    assert "fewest_late" in fb.message and "fastest_results" not in fb.message.split("(")[0]
    fb = not_yet(check_watermark_prediction({**RIGHT, "late_share_5s": 0.5}, r))
    assert "late_share_5s" in fb.message and "±15%" in fb.message
    assert any("rescues only the stragglers less than 5 s late" in h for h in fb.hints)
    passed(check_watermark_prediction({**RIGHT, "late_share_5s": 0.8}, r))  # within ±0.15 of 0.944
    passed(check_watermark_prediction({**RIGHT, "late_share_5s": 1}, r))


def test_a_stragglers_column_is_what_the_share_is_measured_against(home):
    r = result(late=(375, 300, 0), stragglers=[400, 400, 400])  # 300 / 400 = 0.75, not 300 / 375 = 0.8
    fb = passed(check_watermark_prediction({**RIGHT, "late_share_5s": 0.62}, r))
    assert "stragglers sent" in fb.message
    not_yet(check_watermark_prediction({**RIGHT, "late_share_5s": 0.95}, r))


def test_a_share_that_cannot_be_measured_is_reported_not_failed(home):
    r = pd.DataFrame({"delay_s": [5, 30], "late": [354, 0], "wait_s": [4.5, 30.5]})
    fb = passed(check_watermark_prediction({"fewest_late": 30, "fastest_results": 5, "late_share_5s": 0.9}, r))
    assert "late_share_5s was not graded" in fb.message and "no 0 s delay" in fb.message
    r = pd.DataFrame({"delay_s": [0, 30], "late": [354, 0], "wait_s": [0.5, 30.5]})
    fb = passed(check_watermark_prediction({"fewest_late": 30, "fastest_results": 0, "late_share_5s": 0.9}, r))
    assert "no 5 s delay" in fb.message


@pytest.mark.parametrize(
    "bad, words",
    [
        ([1, 2, 3], "not list"),
        (pd.DataFrame({"delay_s": [0]}), "no column(s) ['late', 'wait_s']"),
        (pd.DataFrame(columns=["delay_s", "late", "wait_s"]), "result is empty"),
        ("wm.result", "not str"),
        (pd.DataFrame({"delay_s": [0, 5], "late": [3, None], "wait_s": [0.5, 4.5]}), "must all be numbers"),
        (pd.DataFrame({"delay_s": ["0", "5"], "late": [3, 2], "wait_s": [0.5, 4.5]}), "must all be numbers"),
    ],
)
def test_wrong_results(home, bad, words):
    assert words.lower() in not_yet(check_watermark_prediction(RIGHT, bad)).message.lower()


def test_before_the_run_the_shape_is_checked_and_recording_suggested(home):
    fb = not_yet(check_watermark_prediction(RIGHT, None))
    assert "now run the experiment" in fb.message and any("predictions.record" in h for h in fb.hints)
    assert "percentage" in not_yet(check_watermark_prediction({**RIGHT, "late_share_5s": 80}, None)).message
    assert "[0, 5, 30]" in not_yet(check_watermark_prediction({**RIGHT, "fewest_late": 10}, None)).message
    predictions.record(NAME, RIGHT)
    fb = not_yet(check_watermark_prediction(RIGHT, None))
    assert "was recorded at" in fb.message and not fb.hints
