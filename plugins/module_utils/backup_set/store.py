# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where set records live: ``<store_path>/sets/<set_id>.json`` and ``sets/latest.json``, read and listed.

Invariant: a record is read only from a regular file (never through a symlink, O_NOFOLLOW relative to the checked
directory's descriptor) owned by root or by the user reading it and writable by nobody else, in a ``sets/``
directory with the same rule: whoever else could write there would decide what a restore restores. A mode of
0644 is read (the record holds no secret; only who may write it matters), though this step writes 0600.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.backup_set.schema import (
    LATEST, LATEST_FILE, MAX_RECORD_BYTES, SETS_DIR, BackupSetError, problems_of, set_id_problem, set_time)


def _untrusted(info, what):
    """Why a file or directory of the store is not to be trusted: whoever else can write it decides what a
    restore restores. None when root or this user owns it and nobody else can write it."""
    if info.st_uid not in (0, os.geteuid()):
        return '%s is owned by uid %d, not by root or the user reading it' % (what, info.st_uid)
    if info.st_mode & 0o022:
        return '%s is writable by its group or by others (mode %04o)' % (what, stat.S_IMODE(info.st_mode))
    return None


class Found(object):
    """One record file as read: its bytes and parsed record, or why it was refused."""

    __slots__ = ('name', 'set_id', 'path', 'exists', 'record', 'raw', 'mode', 'mtime', 'refused', 'problems')

    def __init__(self, name, set_id, path):
        self.name, self.set_id, self.path = name, set_id, path
        self.exists, self.record, self.raw, self.mode, self.mtime, self.refused = False, None, None, None, None, None
        self.problems = []

    @property
    def complete(self):
        return self.exists and self.record is not None and not self.problems

    @property
    def time(self):
        return set_time(self.record) or self.mtime

    def summary(self):
        record = self.record if isinstance(self.record, dict) else {}
        datadir = record.get('datadir') if isinstance(record.get('datadir'), dict) else {}
        return {'set_id': self.set_id, 'path': self.path, 'complete': self.complete, 'time': self.time,
                'format_version': record.get('format_version'), 'increment_time': datadir.get('increment_time'),
                'problems': self.problems}


class SetStore(object):
    """``<store_path>/sets``: reads and writes of its record files (see the module docstring's invariants)."""

    def __init__(self, store_path):
        self.store_path = store_path
        self.sets_dir = os.path.join(store_path, SETS_DIR)
        self.latest_path = os.path.join(self.sets_dir, LATEST_FILE)

    def path(self, set_id):
        return os.path.join(self.sets_dir, set_id + '.json')

    def open_dir(self):
        """A descriptor of sets/ once checked, or None when it does not exist."""
        try:
            fd = os.open(self.sets_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackupSetError('refusing the set directory %s: it is a symlink or not a directory (%s)'
                                 % (self.sets_dir, exc.strerror))
        problem = _untrusted(os.fstat(fd), self.sets_dir)
        if problem:
            os.close(fd)
            raise BackupSetError('refusing the set directory: %s; whoever can write there decides what a restore '
                                 'restores' % problem)
        return fd

    def open_dir_checked(self):
        """Check sets/ (raises when it is not to be trusted) and let it go."""
        fd = self.open_dir()
        if fd is None:
            raise BackupSetError('the set directory %s does not exist' % self.sets_dir)
        os.close(fd)

    def remove(self, names):
        """Unlink record files of sets/ (by name, relative to the checked directory), then make it durable."""
        fd = self.open_dir()
        if fd is None:
            return
        try:
            for name in names:
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, dir_fd, name, set_id):
        """sets/<name> as a Found; ``set_id`` None for latest.json (a copy of whichever set it names)."""
        found = Found(name, set_id, os.path.join(self.sets_dir, name))
        if dir_fd is None:
            return found
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_NOCTTY', 0), dir_fd=dir_fd)
        except FileNotFoundError:
            return found
        except OSError as exc:
            found.exists = True
            found.refused = ('%s is a symlink: a record is read only from a regular file' % found.path
                             if os.path.islink(found.path) else 'cannot open %s: %s' % (found.path, exc.strerror))
            found.problems = [found.refused]
            return found
        try:
            _read_open(fd, found)
        finally:
            os.close(fd)
        if found.refused is None and set_id is not None:
            found.problems = problems_of(found.record)
            if isinstance(found.record, dict) and found.record.get('set_id') != set_id:
                found.problems.append('the record names set %s but is stored as %s'
                                      % (ascii(found.record.get('set_id')), name))
        elif found.refused is None:
            found.problems = problems_of(found.record)
        return found

    def list(self):
        """(every record newest first, names in sets/ that are no record's, latest.json as a Found)."""
        fd = self.open_dir()
        if fd is None:
            return [], [], Found(LATEST_FILE, None, self.latest_path)
        try:
            entries, ignored = [], []
            for name in sorted(os.listdir(fd)):
                # Dot names: a write in progress (or killed) keeps its temporary file there.
                if name == LATEST_FILE or name.startswith('.'):
                    continue
                stem = name[:-len('.json')] if name.endswith('.json') else None
                if stem is None or set_id_problem(stem):
                    ignored.append(escape(name))
                    continue
                entries.append(self.read(fd, name, stem))
            latest = self.read(fd, LATEST_FILE, None)
        finally:
            os.close(fd)
        entries.sort(key=lambda found: (found.time or 0, found.set_id), reverse=True)
        return entries, ignored, latest

    def find(self, set_id):
        """(the Found a set id or ``latest`` names, warnings)."""
        if set_id != LATEST:
            problem = set_id_problem(set_id)
            if problem:
                raise BackupSetError(problem)
            fd = self.open_dir()
            try:
                return self.read(fd, set_id + '.json', set_id), []
            finally:
                if fd is not None:
                    os.close(fd)
        entries, _ignored, latest = self.list()
        if not latest.exists:
            complete = [found for found in entries if found.complete]
            if not complete:
                return Found(LATEST_FILE, LATEST, self.latest_path), []
            return complete[0], ['%s is missing: the newest complete set, %s, is read instead'
                                 % (self.latest_path, complete[0].set_id)]
        named = latest.record.get('set_id') if isinstance(latest.record, dict) else None
        if latest.refused or set_id_problem(named):
            why = '; '.join(latest.problems) or 'it names no set (set_id %s)' % ascii(named)
            raise BackupSetError('refusing %s: %s' % (self.latest_path, why))
        for found in entries:
            if found.set_id == named:
                return found, []
        raise BackupSetError('%s names set %s, but %s does not exist' % (self.latest_path, named, self.path(named)))


def _read_open(fd, found):
    info = os.fstat(fd)
    found.exists, found.mode, found.mtime = True, stat.S_IMODE(info.st_mode), info.st_mtime
    if not stat.S_ISREG(info.st_mode):
        found.refused = '%s is not a regular file' % found.path
    elif info.st_size > MAX_RECORD_BYTES:
        found.refused = '%s holds %d bytes, far more than a set record' % (found.path, info.st_size)
    else:
        found.refused = _untrusted(info, found.path)
    if found.refused:
        found.problems = [found.refused]
        return
    chunks, size = [], 0
    while size <= MAX_RECORD_BYTES:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    found.raw = b''.join(chunks)
    try:
        found.record = json.loads(found.raw.decode('utf-8'))
    except ValueError as exc:
        found.refused = '%s is not a JSON record: %s' % (found.path, exc)
        found.problems = [found.refused]
