import os
import re
import time

from common import make_scratch, scratch_dir, umask_mode
from common.scratch import REUSED_AFTER_S, STALE_AFTER_S, _host, _started
from tests.leftovers import left_by


def test_the_folder_names_its_owner_and_is_removed_on_leaving(tmp_path):
    with scratch_dir("evaluation-", tmp_path) as path:
        assert re.fullmatch(rf"evaluation-{os.getpid()}-{re.escape(_host())}-\w{{8}}", path.name)
    assert not path.exists()


def test_a_dead_owners_folder_is_removed_by_the_next_one(tmp_path, dead_pid):
    left = left_by(tmp_path, "evaluation-", dead_pid)
    with scratch_dir("evaluation-", tmp_path):
        assert not left.exists()


def test_a_live_owners_folder_stays(tmp_path):
    live = left_by(tmp_path, "evaluation-", os.getpid())
    with scratch_dir("evaluation-", tmp_path):
        pass
    assert (live / "image.png").exists()


def test_another_hosts_folder_is_judged_by_age_alone(tmp_path, dead_pid):
    theirs = left_by(tmp_path, "evaluation-", dead_pid, host="other-host")
    with scratch_dir("evaluation-", tmp_path):
        pass
    assert theirs.exists()


def test_a_folder_last_changed_before_its_pids_process_started_is_removed(tmp_path):
    """A restarted container's process 1 finds its predecessor's folders (an emptyDir outlives
    the container): the pid runs, but not the process that made them."""
    reused = left_by(tmp_path, "evaluation-", os.getpid())
    then = _started(os.getpid()) - 3 * REUSED_AFTER_S
    os.utime(reused, (then, then))
    with scratch_dir("evaluation-", tmp_path):
        assert not reused.exists()


def test_a_folder_older_than_a_day_is_removed_though_its_pid_runs(tmp_path):
    """Whatever its pid says: no scratch folder is in use for a day."""
    reused = left_by(tmp_path, "evaluation-", os.getpid())
    then = time.time() - STALE_AFTER_S - 60
    os.utime(reused, (then, then))
    with scratch_dir("evaluation-", tmp_path):
        assert not reused.exists()


def test_an_old_folder_named_before_owners_were_is_removed(tmp_path):
    legacy = tmp_path / "evaluation-abcd_123"
    legacy.mkdir()
    then = time.time() - STALE_AFTER_S - 60
    os.utime(legacy, (then, then))
    with scratch_dir("evaluation-", tmp_path):
        assert not legacy.exists()


def test_other_prefixes_are_left_alone(tmp_path, dead_pid):
    other = left_by(tmp_path, "explain-", dead_pid)
    with scratch_dir("evaluation-", tmp_path):
        pass
    assert other.exists()


def test_a_family_sweeps_every_prefix_it_matches(tmp_path, dead_pid):
    left = left_by(tmp_path, ".run-a.partial-", dead_pid)
    path = make_scratch(".run-b.partial-", tmp_path, family=r"\..+\.partial-")
    assert not left.exists() and path.is_dir()


def test_umask_mode_is_what_mkdir_gives(tmp_path):
    before = os.umask(0o027)
    try:
        (tmp_path / "plain").mkdir()
        assert umask_mode() == 0o750 == (tmp_path / "plain").stat().st_mode & 0o777
    finally:
        os.umask(before)


def test_a_process_sweeps_a_folder_at_most_every_few_minutes(tmp_path, dead_pid, monkeypatch):
    """A scratch folder per model load or artifact read would otherwise list the folder each
    time; what a killed process left waits for the next sweep."""
    from common import scratch

    with scratch_dir("evaluation-", tmp_path):
        pass
    left = left_by(tmp_path, "evaluation-", dead_pid)
    with scratch_dir("evaluation-", tmp_path):
        assert left.exists()
    monkeypatch.setattr(scratch, "SWEEP_EVERY_S", 0)
    with scratch_dir("evaluation-", tmp_path):
        assert not left.exists()
