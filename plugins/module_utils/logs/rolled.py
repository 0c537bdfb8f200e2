# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolled logs (``NAME.log.N`` and their compressed forms): scan, plan, compress, delete."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import gzip
import hashlib
import os
import stat
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import apply_owner, fsync_dir, publish, TEMP_PREFIX, temp_sibling
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape, LIVE_LOG, ROLLED_LOG
from ansible_collections.omero.backup.plugins.module_utils.base.runner import CHUNK
from ansible_collections.omero.backup.plugins.module_utils.logs.paths import LogsError


STAMP_FORMAT = '%Y%m%dT%H%M%SZ'
# NAME.log.N as the server rolls it, NAME.log.STAMP[-K] for a file whose compression was interrupted,
# each optionally .gz (ours, or compressed by hand / logrotate as NAME.log.N.gz): ASCII digits, no control
# character, anchored with \Z, so 'Blitz-0.log.7\n' or 'Blitz-0.log.\u0667' is some other file and kept.
ROLLED = ROLLED_LOG
LIVE = LIVE_LOG
GZIP_LEVEL = 6


class Rolled(object):
    """One rolled (or already compressed) log file seen by a scan."""

    def __init__(self, directory, name, match, st):
        self.directory = directory
        self.name = name
        self.path = os.path.join(directory, name)
        self.log = match.group('log')
        self.generation = match.group('generation')
        self.compressed = match.group('gz') is not None
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.identity = _identity(st)

    def sort_key(self):
        # Newest first; the rollover's .1 is newer than .2 when mtimes tie.
        order = int(self.generation) if self.generation.isascii() and self.generation.isdigit() else 0
        return (-self.mtime, order, self.name)


def _identity(st):
    return (st.st_dev, st.st_ino, st.st_size, int(st.st_mtime))


def scan_rolled(directory):
    """{log name: [Rolled, newest first]} for the regular files directly in ``directory``."""
    logs = {}
    for name in sorted(os.listdir(directory)):
        if name.startswith(TEMP_PREFIX):
            continue
        match = ROLLED.match(name)
        if not match:
            continue
        st = os.lstat(os.path.join(directory, name))
        if not stat.S_ISREG(st.st_mode):
            continue
        entry = Rolled(directory, name, match, st)
        logs.setdefault(entry.log, []).append(entry)
    for entries in logs.values():
        entries.sort(key=Rolled.sort_key)
    return logs


def plan_housekeeping(logs, state, keep=0, older_than=None, now=None):
    """{log: {'act': [Rolled], 'kept': [Rolled]}}: the newest ``keep`` rolled generations of each log are
    left alone, and of the rest only those last written more than ``older_than`` seconds ago are acted on."""
    if keep is None or keep < 0:
        raise LogsError('keep must be 0 or more, got %r' % (keep,))
    now = time.time() if now is None else now
    plan = {}
    for log, entries in sorted(logs.items()):
        act, kept = [], []
        for index, entry in enumerate(entries):
            old_enough = older_than is None or entry.mtime <= now - older_than
            wanted = (state == 'absent') or not entry.compressed
            if index >= keep and old_enough and wanted:
                act.append(entry)
            else:
                kept.append(entry)
        plan[log] = {'act': act, 'kept': kept}
    return plan


def _unchanged(entry):
    try:
        return _identity(os.lstat(entry.path)) == entry.identity
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise


def stamp(mtime):
    return time.strftime(STAMP_FORMAT, time.gmtime(mtime))


def _gzip_digest(path):
    digest = hashlib.sha256()
    size = 0
    with gzip.open(path, 'rb') as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def compress(entry):
    """Gzip one rolled file beside itself; returns (gz name or None, bytes freed, reason skipped or None).

    The .gz is written to a temporary sibling with the original's mode, owner and
    mtime, fsynced, read back and compared with what was read, and only then
    published under a name no other file holds; the original is removed last,
    and only if it is still the same file (the server may have rolled in the meantime).
    """
    try:
        source = open(entry.path, 'rb')
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, 0, 'gone before it could be compressed'
        raise
    tmp = None
    try:
        st = os.fstat(source.fileno())
        if _identity(st) != entry.identity:
            return None, 0, 'changed since the scan (the server rolled its logs?)'
        tmp = temp_sibling(entry.path, suffix='.gz')
        digest = hashlib.sha256()
        with open(tmp, 'wb') as raw:
            with gzip.GzipFile(filename=entry.name, mode='wb', fileobj=raw, compresslevel=GZIP_LEVEL,
                               mtime=int(st.st_mtime)) as zipped:
                while True:
                    block = source.read(CHUNK)
                    if not block:
                        break
                    digest.update(block)
                    zipped.write(block)
            raw.flush()
            os.fsync(raw.fileno())
        if _gzip_digest(tmp) != (digest.hexdigest(), st.st_size):
            raise LogsError('compressed copy of %s does not read back as the original; the original was kept'
                            % escape(entry.path))
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        keep_owner(tmp, st)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        gz_name, duplicate = _publish_compressed(tmp, entry, digest.hexdigest(), st)
        if duplicate:
            os.unlink(tmp)
        tmp = None
        gz_size = 0 if duplicate else os.lstat(os.path.join(entry.directory, gz_name)).st_size
    finally:
        source.close()
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    if not _unchanged(entry):
        return gz_name, 0, 'compressed, but the original changed meanwhile and was kept'
    os.unlink(entry.path)
    fsync_dir(entry.directory)
    return gz_name, entry.size - gz_size, None


def keep_owner(path, st):
    if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        apply_owner(path, st.st_uid, st.st_gid)


def _publish_compressed(tmp, entry, digest, st):
    """(name, duplicate): the first free NAME.log.STAMP[-K].gz, or an existing one holding the same bytes
    (a run interrupted between publishing and removing the original)."""
    stem = '%s.%s' % (entry.log, stamp(st.st_mtime))
    for attempt in range(1, 1000):
        name = '%s.gz' % stem if attempt == 1 else '%s-%d.gz' % (stem, attempt)
        final = os.path.join(entry.directory, name)
        if os.path.lexists(final):
            try:
                if _gzip_digest(final) == (digest, st.st_size):
                    return name, True
            except (IOError, OSError, EOFError):
                pass
            continue
        publish(tmp, final)
        return name, False
    raise LogsError('no free name for the compressed copy of %s' % escape(entry.path))


def delete(entry):
    if not _unchanged(entry):
        return 'changed or gone since the scan (the server rolled its logs?)'
    os.unlink(entry.path)
    return None
