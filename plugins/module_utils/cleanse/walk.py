# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The walk of Pixels/, Files/ and Thumbnails/ against the ids, through directory descriptors."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import LinkRefused, lstat_at, open_dir, open_top_dir
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import ID_DIRECTORY
from ansible_collections.omero.backup.plugins.module_utils.cleanse.ids import id_lookup
from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import OMERO_QUERY_BATCH
from ansible_collections.omero.backup.plugins.module_utils.cleanse.quarantine import dir_record
from ansible_collections.omero.backup.plugins.module_utils.cleanse.results import spool_write
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import entry_ids


def _is_real_dir(dir_fd, name):
    """A directory, not a symlink to one (the walk never follows links below the roots)."""
    info = lstat_at(dir_fd, name)
    return info is not None and stat.S_ISDIR(info.st_mode)


class Walker(object):
    """Streams one of Pixels/Files/Thumbnails, spooling orphans and noting what would be left empty.

    Every directory is opened relative to its parent's descriptor without
    following a symlink (only the three roots may be symlinks), and its
    identity, owner, mode and times are kept in ``dirs``: the removal acts
    only in directories that are still these ones, and a quarantine gives its
    directories these owners and modes.
    """

    def __init__(self, datadir, subdir, ids, stats, spool, listing, unknown_listing, now, min_age):
        self.datadir, self.subdir, self.ids, self.stats = datadir, subdir, ids, stats
        # Where every orphan goes (the spool) and the bounded samples shown in the result.
        self.spool, self.listing, self.unknown_listing = spool, listing, unknown_listing
        self.young_before = now - min_age
        self.empty_dirs = []  # post-order: children before parents
        self.dirs = {}  # relpath ('' is the data dir) -> dir_record()

    def walk(self):
        datadir_fd = open_dir(self.datadir, follow=True)
        try:
            self.dirs[''] = dir_record(os.fstat(datadir_fd))
            # The three roots may be symlinks to bigger volumes (as omero's own walk
            # allows); below them no symlinked directory is followed.
            try:
                root_fd = open_top_dir(datadir_fd, self.subdir)
            except LinkRefused as exc:
                raise OmeroBackupError('%s/%s %s: refusing to cleanse through it. Nothing was removed.'
                                       % (self.datadir, self.subdir, exc.why))
            if root_fd is not None:
                try:
                    self._walk_dir(root_fd, self.subdir, top=True)
                finally:
                    os.close(root_fd)
        finally:
            os.close(datadir_fd)
        # omero asks about every file it meets, kept names included, 25 at a time.
        self.stats['omero_queries'] = -(-self.stats['entries'] // OMERO_QUERY_BATCH)

    def _keep_unknown(self, relpath):
        self.stats['kept_unknown'] += 1
        self.unknown_listing.add(relpath)

    def _walk_dir(self, fd, relpath, top=False):
        """True when nothing would be left in this directory after the cleanse.

        os.listdir, not os.scandir: names only, no object per entry, as fast
        as find. Types are asked for (lstat) only where they matter: names
        that are not ids (a Dir-NNN to enter, or something to keep) and
        orphans (a directory named like an id is kept, never removed).
        """
        self.dirs[relpath] = dir_record(os.fstat(fd))
        names = os.listdir(fd)
        ids = entry_ids(names)
        kept = 0
        subdirs = []
        if None in ids:
            for name, object_id in zip(names, ids):
                if object_id is not None:
                    continue
                is_dir = _is_real_dir(fd, name)
                if is_dir and ID_DIRECTORY.match(name):
                    subdirs.append(name)
                    continue
                self._keep_unknown(relpath + '/' + name + ('/' if is_dir else ''))
                kept += 1
            known = [object_id for object_id in ids if object_id is not None]
        else:
            known = ids
        self.stats['entries'] += len(names) - len(subdirs)
        present = id_lookup(self.ids, known)
        if present.issuperset(known):
            # The usual directory: every id has its row (checked in C, no list built).
            orphans = []
        else:
            orphans = [(name, object_id) for name, object_id in zip(names, ids)
                       if object_id is not None and object_id not in present]
        kept += len(known) - len(orphans)
        orphans.sort()
        for name, object_id in orphans:
            if not self._orphan(fd, name, relpath + '/' + name, object_id):
                kept += 1
        # Subdirectories are walked after this directory's listing is done;
        # only the descriptors of the directories above stay open.
        kept += sum(1 for name in sorted(subdirs) if not self._walk_subdir(fd, relpath, name))
        if kept == 0 and not top:
            self.empty_dirs.append(relpath)
            self.stats['empty_dirs'] += 1
            return True
        return False

    def _walk_subdir(self, fd, relpath, name):
        """Walk the Dir-NNN ``name``; True when it would be left empty."""
        try:
            child = open_dir(name, dir_fd=fd)
        except OSError as exc:
            # Swapped for a symlink (or gone) since the lstat above: not entered.
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                raise
            self._keep_unknown(relpath + '/' + name)
            return False
        try:
            return self._walk_dir(child, relpath + '/' + name)
        finally:
            os.close(child)

    def _orphan(self, dir_fd, name, relpath, object_id):
        """Account for one orphan; False when it must stay (too young)."""
        info = lstat_at(dir_fd, name)
        if info is None:
            return True
        if stat.S_ISDIR(info.st_mode):
            # omero lists such a directory but never removes it; neither do we.
            self._keep_unknown(relpath + '/')
            return False
        if info.st_mtime > self.young_before:
            self.stats['kept_young'] += 1
            return False
        self.stats['orphans'] += 1
        self.stats['orphan_bytes'] += info.st_size
        if self.stats['highest_orphan_id'] is None or object_id > self.stats['highest_orphan_id']:
            self.stats['highest_orphan_id'] = object_id
        spool_write(self.spool, relpath, info.st_size, object_id)
        self.listing.add(relpath)
        return True
