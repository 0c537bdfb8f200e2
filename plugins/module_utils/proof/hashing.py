# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading one file back and hashing it, on a pool of threads that keeps every core busy.

Threads, not processes: hashlib (SHA-1, MD5) and zlib (CRC-32, Adler-32) release the GIL
while they hash a large buffer, and reads release it too, so N threads hash N files at once
without copying a byte between processes. Only the pure-Python Murmur3 holds the GIL (a
store hashed with Murmur3 proves at its speed, 9-17 MB/s, see docs/verify.md).

Files are opened following links: an in-place import's link in ManagedRepository is proven
by the bytes OMERO reads through it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import collections
import errno
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.omero.backup.plugins.module_utils.proof import algorithms

BUFFER = 1 << 20

# What became of one row: 'proven', 'mismatched', 'missing', 'dangling' (a link whose target is gone), 'unhashed'.
Outcome = collections.namedtuple('Outcome', 'task status actual size read error')
# One row to prove: its id, its file (absolute bytes path, shown relpath), algorithm (None: no hash), expected hash,
# the size the database records (None when it has none).
Task = collections.namedtuple('Task', 'id path relpath algorithm expected size')


def _gone(task, error):
    status = 'dangling' if os.path.islink(task.path) else 'missing'
    return Outcome(task, status, None, None, 0, error)


def prove_file(task):
    """Outcome of one Task: hashes the file with its algorithm (only stats it when there is nothing to hash)."""
    try:
        fd = os.open(task.path, os.O_RDONLY | getattr(os, 'O_NOCTTY', 0))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return _gone(task, exc.strerror)
        return Outcome(task, 'missing', None, None, 0, exc.strerror)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Outcome(task, 'missing', None, None, 0, 'not a regular file')
        if task.algorithm is None:
            status = 'mismatched' if task.size is not None and task.size != info.st_size else 'unhashed'
            return Outcome(task, status, None, info.st_size, 0, None)
        hasher = algorithms.new(task.algorithm)
        read = 0
        if algorithms.reads_content(task.algorithm):
            read = _feed(fd, hasher)
        else:
            hasher.size = info.st_size
        actual = hasher.hexdigest()
        status = 'proven' if actual == task.expected.strip().lower() else 'mismatched'
        return Outcome(task, status, actual, info.st_size, read, None)
    except OSError as exc:  # an I/O error while reading is bad news about the file, not about the proof
        return Outcome(task, 'mismatched', None, None, 0, exc.strerror)
    finally:
        os.close(fd)


def _feed(fd, hasher):
    if hasattr(os, 'posix_fadvise'):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    read = 0
    with open(fd, 'rb', buffering=0, closefd=False) as handle:
        while True:
            count = handle.readinto(buf)
            if not count:
                return read
            hasher.update(view[:count])
            read += count


class Budget(object):
    """When to stop handing out files: bytes (by the sizes the database records) and/or seconds; 0/None: no limit."""

    def __init__(self, max_bytes=0, max_seconds=None, clock=time.monotonic):
        self.max_bytes, self.max_seconds, self.clock = max_bytes or 0, max_seconds, clock
        self.started = clock()
        self.bytes = 0
        self.reason = None

    def take(self, size):
        """False (and ``reason`` set) when the budget is spent; else counts ``size`` as handed out."""
        if self.max_bytes and self.bytes >= self.max_bytes:
            self.reason = 'bytes'
        elif self.max_seconds is not None and self.clock() - self.started >= self.max_seconds:
            self.reason = 'time'
        if self.reason:
            return False
        self.bytes += size or 0
        return True


def prove_all(tasks, jobs, budget):
    """Yields Outcomes in the order of ``tasks`` (ids ascending), at most 4 x jobs files in flight.

    Stops taking tasks once the budget is spent; every task taken is finished and yielded, so the
    last outcome yielded is exactly where the next run goes on.
    """
    window = collections.deque()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for task in tasks:
            if not budget.take(task.size):
                break
            window.append(pool.submit(prove_file, task))
            if len(window) >= 4 * jobs:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
