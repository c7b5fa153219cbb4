"""Coverage of incremental export windows: gaps, overlaps, a missing full export."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dynamodb_cdc.manifest import FULL_EXPORT, INCREMENTAL_EXPORT, ExportWindow, check_windows

T = datetime(2026, 3, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def full(at):
    return ExportWindow(f"full@{at:%H}", FULL_EXPORT, at, None, None)


def inc(start, end):
    return ExportWindow(f"inc@{start:%H}-{end:%H}", INCREMENTAL_EXPORT, None, start, end)


def test_a_continuous_chain_is_clean():
    assert check_windows("t", [full(T), inc(T, T + H), inc(T + H, T + 2 * H)]) == ([], [])


def test_only_full_exports_need_no_windows():
    assert check_windows("t", [full(T), full(T + H)]) == ([], [])


def test_gap_between_windows_is_an_error_naming_the_interval():
    errors, warnings = check_windows("t", [full(T), inc(T, T + H), inc(T + 2 * H, T + 3 * H)])
    assert len(errors) == 1 and not warnings
    assert "gap from 2026-03-01T01:00:00+00:00 to 2026-03-01T02:00:00+00:00" in errors[0]


def test_a_gap_whose_export_did_not_load_says_so_instead_of_asking_for_the_window_again():
    """A window whose export failed to load read as 'never exported: request that window', which
    would make an overlapping duplicate of it."""
    failed = inc(T + H, T + 2 * H)
    errors, _ = check_windows("t", [full(T), inc(T, T + H), inc(T + 2 * H, T + 3 * H)], [(failed, "failed")])
    assert errors == ["t: gap from 2026-03-01T01:00:00+00:00 to 2026-03-01T02:00:00+00:00 before incremental export "
                      "inc@02-03: the export of that window, inc@01-02 (failed), did not load. Fix what its errors "
                      "say and rerun load-export (requesting the window again would overlap it)."]
    errors, _ = check_windows("t", [full(T), inc(T, T + H), inc(T + 2 * H, T + 3 * H)],
                              [(inc(T + 3 * H, T + 4 * H), "failed")])  # elsewhere: the gap is a gap
    assert "were never exported. Request an incremental export" in errors[0]


def test_gap_after_the_full_export_is_an_error():
    errors, _ = check_windows("t", [full(T), inc(T + H, T + 2 * H)])
    assert "gap from 2026-03-01T00:00:00+00:00 to 2026-03-01T01:00:00+00:00" in errors[0]


def test_overlap_is_a_warning_that_says_what_it_can_keep():
    errors, warnings = check_windows("t", [full(T), inc(T, T + 2 * H), inc(T + H, T + 3 * H)])
    assert not errors and len(warnings) == 1 and "overlap" in warnings[0]
    assert "harmless" not in warnings[0]
    assert "deleted before the later one ends has no line in it and stays" in warnings[0]
    assert "load a new full export to be exact again" in warnings[0]


def test_missing_full_export_is_reported():
    errors, _ = check_windows("t", [inc(T, T + H)])
    assert len(errors) == 1 and "no full export loaded before the incremental windows" in errors[0]


def test_a_window_that_starts_before_the_full_export_and_runs_past_it_covers_it_but_warns():
    """No gap, but the window is compacted: an item created before the full export and deleted after
    it inside the window has no line, and the snapshot holds it."""
    errors, warnings = check_windows("t", [full(T + H), inc(T, T + 2 * H)])
    assert not errors and len(warnings) == 1 and "starts before the full export" in warnings[0]
    # request-export's first window starts at the full export's second: no warning for that fraction
    assert check_windows("t", [full(T + timedelta(milliseconds=250)), inc(T, T + H)]) == ([], [])


def test_windows_before_a_later_full_export_no_longer_matter():
    # A gap before the latest full export is healed by it.
    exports = [full(T), inc(T, T + H), full(T + 3 * H), inc(T + 3 * H, T + 4 * H)]
    assert check_windows("t", exports) == ([], [])
    # A window that starts before the latest full export and runs past it covers it (with the warning above).
    errors, warnings = check_windows("t", [full(T), full(T + 2 * H), inc(T + H, T + 3 * H)])
    assert not errors and len(warnings) == 1


def test_a_gap_healed_by_a_full_export_after_every_window_is_not_an_error():
    """A gap is fixed by loading a new full export (the state as of a later time).  Until a window
    after it was loaded, every load-export run still reported the healed gap and exited 1."""
    exports = [full(T), inc(T, T + H), inc(T + 2 * H, T + 3 * H), full(T + 4 * H)]
    assert check_windows("t", exports) == ([], [])
    # and once a window continues it, as before
    assert check_windows("t", exports + [inc(T + 4 * H, T + 5 * H)]) == ([], [])
