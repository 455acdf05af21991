"""One process at a time in a work folder: a live holder is refused by name, a dead one's lock
is taken over, and the lock goes when the work ends."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from recbole_tpad.folder_lock import LOCK_NAME, FolderBusy, folder_owner, hold_folder


@pytest.fixture
def other_process():
    """A live process that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def write_lock(folder, pid, host=None, what="a test"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps(
        {"pid": pid, "host": host or socket.gethostname(), "started": "earlier", "what": what}))


def test_the_lock_is_held_during_the_work_and_gone_after(tmp_path):
    folder = tmp_path / "unit"
    with hold_folder(folder, "training X"):
        record = json.loads((folder / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["what"] == "training X"
        assert folder_owner(folder) is None  # this process's own lock does not block it
    assert not (folder / LOCK_NAME).exists()
    with pytest.raises(ZeroDivisionError):
        with hold_folder(folder, "training X"):
            1 / 0
    assert not (folder / LOCK_NAME).exists()  # released when the work fails too


def test_a_live_holder_is_refused_by_pid_and_a_dead_ones_lock_is_taken_over(tmp_path, other_process):
    folder = tmp_path / "unit"
    write_lock(folder, other_process.pid, what="compare unit X")
    assert folder_owner(folder)["pid"] == other_process.pid
    with pytest.raises(FolderBusy) as busy:
        with hold_folder(folder, "another"):
            pytest.fail("ran while another process held the folder")
    said = str(busy.value)
    assert f"in use by process {other_process.pid}" in said and "compare unit X" in said
    assert str(folder / LOCK_NAME) in said  # what to delete if that process is gone
    other_process.kill()
    other_process.wait()
    assert folder_owner(folder) is None
    with hold_folder(folder, "after the crash"):
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()


def test_locks_that_cannot_be_checked_count_as_held_until_they_are_old(tmp_path):
    folder = tmp_path / "unit"
    write_lock(folder, 1, host="another-machine")  # a shared disk: its process is not visible here
    with pytest.raises(FolderBusy, match="another-machine"):
        with hold_folder(folder, "x"):
            pass
    (folder / LOCK_NAME).write_text("{")  # being written right now
    assert folder_owner(folder) is not None
    old = time.time() - 3600  # a crash's leftover
    os.utime(folder / LOCK_NAME, (old, old))
    assert folder_owner(folder) is None
    with hold_folder(folder, "x"):
        pass


def test_a_pid_reused_by_a_later_process_is_not_the_holder(tmp_path, other_process):
    """After a restart, the pid a stale lock names may belong to a process started since: that
    process did not write the lock (Linux: its start time is read from /proc)."""
    folder = tmp_path / "unit"
    write_lock(folder, other_process.pid)
    old = time.time() - 3600  # the lock was written an hour before that process started
    os.utime(folder / LOCK_NAME, (old, old))
    if not os.path.exists(f"/proc/{other_process.pid}/stat"):
        pytest.skip("no /proc here: a reused pid counts as the holder")
    assert folder_owner(folder) is None
    os.utime(folder / LOCK_NAME)  # written now, by the live process: held
    assert folder_owner(folder)["pid"] == other_process.pid
