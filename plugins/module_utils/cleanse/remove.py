# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removal (or quarantine) of the spooled orphans and of the directories left empty, through checked directory descriptors."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import errno
import os
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_open
from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import DirChain, DirChanged, identity, lstat_at, open_dir, split_relpath
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape as escape_name
from ansible_collections.omero.backup.plugins.module_utils.cleanse.quarantine import check_quarantine_root, QuarantineWriter
from ansible_collections.omero.backup.plugins.module_utils.cleanse.results import report_line, spool_read


def check_quarantine_dir(datadir, quarantine_dir, subdirectories):
    if not quarantine_dir:
        return
    target = os.path.realpath(quarantine_dir)
    for subdir in subdirectories:
        scanned = os.path.realpath(os.path.join(datadir, subdir))
        if target == scanned or target.startswith(scanned + os.sep):
            raise OmeroBackupError('quarantine_dir %s is inside the scanned directory %s: choose a place outside it'
                                   % (quarantine_dir, scanned))
    if os.path.lexists(quarantine_dir) and not os.path.isdir(quarantine_dir):
        raise OmeroBackupError('quarantine_dir %s exists and is not a directory' % quarantine_dir)
    # An existing quarantine another user can write into is refused before the walk, in check mode too.
    check_quarantine_root(quarantine_dir)


def apply(datadir, quarantine_dir, spool, empty_dirs, result, young_before, report_file, dir_records):
    """Remove (or quarantine) the spooled orphans, then the directories left empty.

    Everything happens through descriptors of directories opened from the
    data dir down without following a symlink (dirfd.DirChain), each checked
    against the identity the walk recorded; a directory that changed since
    (a Dir-NNN swapped for a symlink, say) is skipped whole and reported.
    """
    data_fd = open_dir(datadir, follow=True)
    done_action = 'quarantined' if quarantine_dir else 'removed'
    max_errors = 50
    changed_dirs = set()
    try:
        if identity(os.fstat(data_fd)) != tuple(dir_records[''][:2]):
            raise OmeroBackupError('data directory %s is another directory than the one walked: nothing was removed' % datadir)
        chain = DirChain(data_fd, expected=dir_records, follow_first=True)
        with contextlib.ExitStack() as stack:
            stack.callback(chain.close)
            writer = None
            if quarantine_dir:
                writer = QuarantineWriter(quarantine_dir, datadir, dir_records)
                stack.callback(writer.finish)
            # The report is written as the removal goes, so its memory stays flat.
            report = stack.enter_context(atomic_open(report_file, mode=0o600)) if report_file else None
            for relpath, size, _object_id in spool_read(spool):
                action = _remove_one(chain, writer, relpath, result, young_before, max_errors, changed_dirs)
                if report is not None:
                    report.write(report_line(relpath, size, done_action if action == 'done' else action))
            for relpath in empty_dirs:
                reldir, name = split_relpath(relpath)
                try:
                    parent = chain.open(reldir)
                    if writer is not None:
                        # The undo makes it again, with its owner, mode and times; no record, no removal.
                        writer.note_removed_dir(relpath)
                except DirChanged:
                    continue
                except OSError as exc:
                    if len(result['errors']) < max_errors:
                        result['errors'].append('%s/: %s, kept' % (escape_name(relpath), exc.strerror or exc))
                    continue
                try:
                    os.rmdir(name, dir_fd=parent)
                except OSError as exc:
                    # Something appeared, or a file stayed: the directory is kept.
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                        continue
                    raise
                chain.mark_dirty(reldir)
                result['subdirectories'][relpath.split('/', 1)[0]]['empty_dirs_removed'] += 1
    finally:
        os.close(data_fd)


def _remove_one(chain, writer, relpath, result, young_before, max_errors, changed_dirs):
    """'done', 'vanished', 'kept_young' or 'kept' (could not be removed; see errors)."""
    stats = result['subdirectories'][relpath.split('/', 1)[0]]
    reldir, name = split_relpath(relpath)

    def error(text):
        if len(result['errors']) < max_errors:
            result['errors'].append(text)

    try:
        dir_fd = chain.open(reldir)
    except DirChanged as exc:
        if exc.relpath not in changed_dirs:
            changed_dirs.add(exc.relpath)
            error('%s %s since the walk: nothing in it was removed' % (escape_name(exc.relpath), exc.why))
        return 'kept'
    info = lstat_at(dir_fd, name)
    if info is None:
        return 'vanished'
    if stat.S_ISDIR(info.st_mode):
        error('%s: a directory now, kept' % escape_name(relpath))
        return 'kept'
    # Touched since the walk: a server is writing it after all.
    if info.st_mtime > young_before:
        stats['kept_young'] += 1
        return 'kept_young'
    try:
        if writer is not None:
            writer.put(dir_fd, reldir, name)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError as exc:
        error('%s: %s' % (escape_name(relpath), exc.strerror or exc))
        return 'kept'
    chain.mark_dirty(reldir)
    stats['removed'] += 1
    stats['removed_bytes'] += info.st_size
    return 'done'
