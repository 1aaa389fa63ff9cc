"""Writing files so that a failed or interrupted command leaves nothing half-written.

Each file is written to a temporary `.NAME.pgolf-tmp-PID-HOST-RANDOM` beside it, flushed to disk
and renamed over NAME, so the old file stays intact until the new one is complete. A SIGKILL can
still leave a temporary behind; its name says which process wrote it (PID, and HOST, a hash of the
host name, so that a directory shared between machines or containers is judged only by the host
that can see the process), and the next write into the same directory removes the temporaries of
this host's processes that are no longer running. `find . -name '.*.pgolf-tmp-*'` lists them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Sequence
from pathlib import Path

from pgolf_pack.errors import InputError
from pgolf_pack.text import printable

TMP_MARK = ".pgolf-tmp-"
_TMP_NAME = re.compile(r"^\..+" + re.escape(TMP_MARK) + r"(\d+)-([0-9a-f]{6})-[0-9a-f]+$")
_HOST = hashlib.blake2s(socket.gethostname().encode(errors="replace"), digest_size=3).hexdigest()


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename.

    Raises:
        InputError: the directory is missing or read-only, the path is a directory, the disk is
            full, the file is too large, ... (one line naming the path and the system's reason);
            the old file, if any, is left as it was.
    """
    write_all([(path, data)])


def write_all(files: Sequence[tuple[str | os.PathLike[str], bytes]]) -> None:
    """Write several files all or nothing: every temporary is written and flushed first, and only
    then are they renamed into place, so an error (ENOSPC, EFBIG, ...) in any leaves every old
    file as it was and no temporary behind."""
    written: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = Path(path)
            written.append((_write_temporary(path, data), path))
        for tmp, path in written:
            try:
                os.replace(tmp, path)
            except OSError as e:
                raise _input_error(path, e) from None
    finally:
        for tmp, _ in written:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def _write_temporary(path: Path, data: bytes) -> Path:
    directory = path.parent
    if not directory.is_dir():
        raise InputError(f"output directory '{printable(directory)}' does not exist; create it first")
    if path.is_dir():
        raise InputError(f"output '{printable(path)}' is a directory; name a file")
    if path.exists() and not path.is_file():  # renaming over /dev/null would replace the device
        raise InputError(f"output '{printable(path)}' is not a regular file (a device, pipe or socket); name a file")
    remove_stale_temporaries(directory)
    tmp = directory / f".{path.name}{TMP_MARK}{os.getpid()}-{_HOST}-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        raise _input_error(path, e) from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException as e:
        os.close(fd)
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise _input_error(path, e) from None
        raise
    os.close(fd)
    return tmp


def _input_error(path: Path, e: OSError) -> InputError:
    reason = e.strerror or errno.errorcode.get(e.errno or 0, str(e))
    hint = {errno.ENOSPC: "; free some space", errno.EDQUOT: "; free some space",
            errno.EFBIG: "; the file size limit (ulimit -f) or the file system refused it",
            errno.EACCES: "; choose a writable place", errno.EROFS: "; choose a writable place",
            errno.EPERM: "; choose a writable place", errno.EISDIR: "; name a file"}.get(e.errno or 0, "")
    return InputError(f"cannot write '{printable(path)}': {reason}{hint}; nothing was written")


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries in `directory` left by writers that died (SIGKILL, power loss of a
    process, ...): `.NAME.pgolf-tmp-PID-HOST-*` of this host whose PID is no longer running.
    Returns what it removed."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_NAME.match(entry.name)
        if not m or m.group(2) != _HOST or _alive(int(m.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True
