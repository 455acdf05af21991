"""One process at a time in a work folder: a comparison unit's checkpoint folder, a pretraining
run's work folder.

Why: both resume from what is in the folder, so a second process started on it (the same
``compare`` or ``make table`` typed again in another terminal while the first still runs, or a
unit's printed ``--unit=`` command) would train the same run twice, each overwriting the other's
checkpoints and result. The lock is a small JSON file (``.lock``: pid, host, start, what holds
it) made with an exclusive create; a lock whose process is gone (killed, machine restarted) is
taken over, so a crash never strands a folder."""

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".lock"
#: a lock file that cannot be read this long after it was made is a crash's leftover
UNREADABLE_GRACE_S = 60


class FolderBusy(RuntimeError):
    """Raised when another live process holds the folder."""


def _started_at(pid):
    """When process ``pid`` started (seconds since the epoch), where Linux's /proc says; else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # the boot's wall-clock time from the clocks themselves (/proc/stat's btime drifts by
        # seconds on a virtual machine)
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _alive(pid, locked_at):
    """Whether the process that wrote a lock at ``locked_at`` still runs: its pid is live and,
    where that can be read, was not reused by a process started later (after a restart)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    started = _started_at(pid)
    return started is None or started <= locked_at + 5  # clock ticks, file-time rounding


def folder_owner(folder):
    """The lock's record (``pid``, ``host``, ``started``, ``what``) if a live process holds
    ``folder``, else ``None``. A process on another host cannot be checked from here, so its
    lock counts as held."""
    path = Path(folder) / LOCK_NAME
    try:
        record = json.loads(path.read_text())
        pid = int(record["pid"])
        locked_at = path.stat().st_mtime
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, OSError):
        try:  # being written right now, or a crash's leftover
            recent = time.time() - path.stat().st_mtime < UNREADABLE_GRACE_S
        except FileNotFoundError:
            return None
        return {"pid": "?", "host": "?", "started": "just now", "what": "?"} if recent else None
    if record.get("host") != socket.gethostname() or (pid != os.getpid() and _alive(pid, locked_at)):
        return record
    return None


def holder_text(record):
    """``process <pid> on <host> since <start>``: who holds a folder, from its lock's record."""
    return f"process {record.get('pid')} on {record.get('host')} since {record.get('started')}"


def _busy_message(folder, record):
    return (f"{folder} is in use by {holder_text(record)} ({record.get('what')}): wait for it to "
            f"finish; if that process is gone, delete {Path(folder) / LOCK_NAME}")


@contextmanager
def hold_folder(folder, what):
    """Hold ``folder`` for this process while the block runs (``what``: a few words saying what
    runs there, shown to a second process); raises :class:`FolderBusy` if a live process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "what": what}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = folder_owner(folder)
            if holder:
                raise FolderBusy(_busy_message(folder, holder)) from None
            path.unlink(missing_ok=True)  # its process is gone: take the folder over
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        break
    else:
        raise FolderBusy(_busy_message(folder, folder_owner(folder) or {}))
    try:
        yield
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (FileNotFoundError, ValueError):
            pass
