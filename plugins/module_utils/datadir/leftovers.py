# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore leftovers: the staging trees a killed restore left in or beside a data dir, found and removed under the
data dir's lock by the next restore or backup (whatever the engine)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import re
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import open_dir_nofollow, remove_tree_at
from ansible_collections.omero.backup.plugins.module_utils.base.locking import AlreadyRunning, ExclusiveLock, datadir_lock_path
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import DatadirError
from ansible_collections.omero.backup.plugins.module_utils.engines.base import STAGING_PREFIX

# mkdtemp's random part: 8 of [a-z0-9_]; with the data dir's key before it, a sibling staging tree names its data dir.
_STAGING_SUFFIX = re.compile(r'[a-z0-9_]{8}\Z')


def staging_prefix(datadir):
    """The name prefix of the restore staging of ``datadir`` (a real path): keyed by that path, so that a staging
    tree beside the data dir says whose it is, and a run never takes another data dir's staging for its own."""
    key = hashlib.sha256(datadir.encode('utf-8', 'surrogateescape')).hexdigest()[:12]
    return '%s%s.' % (STAGING_PREFIX, key)


def find_leftovers(datadir):
    """(ours, unknown): restore staging trees of ``datadir`` (a real path) as (directory, name), and staging
    trees beside it whose data dir cannot be told (named by a version before the key), as paths.

    Ours: every top-level ``.omero-backup-restore.*`` inside the data dir (a mount point stages there) and the
    ``.omero-backup-restore.<key>.*`` beside it. Only safe to remove while the data dir's lock is held: any
    restore using one holds that lock.
    """
    ours, unknown = [], []
    if os.path.isdir(datadir) and not os.path.islink(datadir):
        ours.extend((datadir, name) for name in sorted(os.listdir(datadir)) if name.startswith(STAGING_PREFIX))
    parent = os.path.dirname(datadir.rstrip('/')) or '/'
    mine = staging_prefix(datadir)
    try:
        beside = sorted(os.listdir(parent))
    except OSError:
        beside = []
    for name in beside:
        if name.startswith(mine) and _STAGING_SUFFIX.match(name[len(mine):]):
            ours.append((parent, name))
        elif (name.startswith(STAGING_PREFIX) and _STAGING_SUFFIX.match(name[len(STAGING_PREFIX):])
              and os.path.isdir(os.path.join(parent, name))):
            unknown.append(os.path.join(parent, name))
    return ours, unknown


def clean_leftovers(datadir, check_mode, result, lock_held=False):
    """Remove the restore staging trees a killed restore left for ``datadir``; results ``leftovers`` (paths
    removed, or that would be in check mode) and ``leftovers_bytes``.

    Only under the data dir's lock, which every restore holds while its staging tree exists. ``lock_held``: the
    caller (a restore) holds it, and a tree that cannot be removed fails the run. Otherwise (a backup) it is
    taken here without waiting; when another run holds it nothing is removed and a warning says so (the
    leftovers are excluded from the backup anyway).
    """
    result.setdefault('leftovers', [])
    result.setdefault('leftovers_bytes', 0)
    ours, unknown = find_leftovers(datadir)
    for path in unknown:
        result['warnings'].append('%s looks like the staging tree of a killed restore, but its name does not say '
                                  'which data dir it belongs to; remove it by hand once no restore runs'
                                  % escape(path))
    if not ours:
        return
    if check_mode:
        for directory, name in ours:
            result['leftovers'].append(escape(os.path.join(directory, name)))
            result['leftovers_bytes'] += directory_usage_safe(os.path.join(directory, name))
        result['changed'] = True
        return
    lock = None
    if not lock_held:
        lock = ExclusiveLock(datadir_lock_path(datadir), 'removal of restore leftovers in %s' % datadir)
        try:
            lock.acquire()
        except (AlreadyRunning, OSError) as exc:
            result['warnings'].append('restore leftovers %s were not removed (%s); they are not part of this backup'
                                      % (', '.join(escape(os.path.join(d, n)) for d, n in ours), exc))
            return
        # Listed again under the lock: a restore that finished meanwhile has renamed its staging away.
        ours, unknown = find_leftovers(datadir)
    try:
        for directory, name in ours:
            _remove_leftover(directory, name, lock_held, result)
    finally:
        if lock is not None:
            lock.release()
    if result['leftovers']:
        result['warnings'].append('removed %d restore leftover(s) (%d bytes) a killed restore had left: %s'
                                  % (len(result['leftovers']), result['leftovers_bytes'], ', '.join(result['leftovers'])))


def _remove_leftover(directory, name, lock_held, result):
    """Remove one staging tree, unless a process still names it; a partial removal fails a restore."""
    path = escape(os.path.join(directory, name))
    users = processes_using(os.path.join(directory, name))
    if users:
        # Not a leftover yet; the next run takes it once that process has ended.
        result['warnings'].append('restore leftover %s was not removed: process(es) %s still name it on their '
                                  'command line (an rdiff-backup whose restore was killed?)'
                                  % (path, ', '.join(str(pid) for pid in users)))
        return
    report = remove_at(directory, name)
    result['leftovers'].append(path)
    result['leftovers_bytes'] += report.bytes
    result['changed'] = True
    if report.errors:
        message = 'restore leftover %s was only partly removed: %s' % (path, '; '.join(
            '%s: %s' % (escape(rel), why) for rel, why in report.errors[:5]))
        if lock_held:
            raise DatadirError(message + '; nothing restored', result)
        result['warnings'].append(message)


def processes_using(path):
    """Pids whose command line names ``path`` or a path below it (from /proc/*/cmdline).

    A restore killed alone (the OOM killer takes the module, not its child) can leave its rdiff-backup running,
    still writing into the staging tree it was given on its command line: that tree is not a leftover yet.
    """
    wanted = os.fsencode(path.rstrip('/'))
    users = []
    try:
        pids = [entry for entry in os.listdir('/proc') if entry.isdigit()]
    except OSError:
        return users
    for pid in pids:
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                args = handle.read().split(b'\0')
        except (IOError, OSError):
            continue
        if any(arg == wanted or arg.startswith(wanted + b'/') for arg in args):
            users.append(int(pid))
    return sorted(users)


def remove_at(directory, name):
    fd = open_dir_nofollow(directory)
    try:
        report = remove_tree_at(fd, name)
        os.fsync(fd)
    finally:
        os.close(fd)
    return report


def directory_usage_safe(path):
    """Bytes of the regular files below ``path``, links not followed (for check mode's report)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
