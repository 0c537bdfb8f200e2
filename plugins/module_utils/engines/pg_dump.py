# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg_dump engine of the database: a DatabaseEngine over pg_dump, pg_dumpall, pg_restore and vacuumdb.

Its points are the dumps in a directory (dumps.py), a backup is one dump published only once read
back in full (pg_dump_write.py), retention removes dumps but never the newest complete one, a verify is the
manifest's sha256s plus a full read-through, and a restore is pg_restore into a database made for it, or swapped
in for a non-empty one (pg_dump_restore.py, pg_dump_replace.py). pgBackRest (issue 15) is the next
DatabaseEngine: its points are backup labels with their WAL range, its restore a cluster restore to a time.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.engines.base import (
    BackupOutcome, DatabaseEngine, EngineError, Health, Point, RetentionOutcome, VerifyOutcome)
from ansible_collections.omero.backup.plugins.module_utils.dumps import dump_epoch, list_dumps, prune
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_files import read_through, verify_source
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_restore import restore
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_write import client_facts, planned, write_dump

DUMP = 'dump'


def _point(item):
    return Point(item['path'], dump_epoch(item), DUMP, item['complete'], details=item)


class PgDumpEngine(DatabaseEngine):
    """pg_dump of one database into a directory of dumps; pg_restore of one dump into a database."""

    name = 'pg_dump'

    def __init__(self, runner):
        super(PgDumpEngine, self).__init__(runner)
        self._client = None

    def _client_facts(self, options):
        """(client major, its version text, the -Z value), asked once: before anything is written."""
        if self._client is None:
            self._client = client_facts(options.connection, options.compress, self.runner)
        return self._client

    def health(self, options):
        major, text, z_value = self._client_facts(options)
        return Health(True, version=text, details={'major': major, 'compress': z_value})

    def list(self, options):
        """The dumps of ``options.db`` in ``options.dest``, oldest first (complete or not: Point.complete says)."""
        return [_point(item) for item in reversed(list_dumps(options.dest, options.db))]

    def backup(self, options, check_mode=False):
        """One dump (the caller holds the destination's lock); in check mode, what it would be."""
        client = self._client_facts(options)
        if check_mode:
            fields, warnings = planned(options, client)
            return BackupOutcome(None, warnings=warnings, details=fields)
        fields, warnings = write_dump(options, self.runner, client)
        made = [point for point in self.list(options) if point.id == fields['path']]
        return BackupOutcome(made[0] if made else None, bytes=fields['size'], seconds=fields['duration'],
                             warnings=warnings, details=fields)

    def verify(self, point, options):
        """The dump matches its manifest (sha256 of every file) and pg_restore reads it through to the end."""
        fmt = point.details.get('format') or ('directory' if os.path.isdir(point.id) else 'custom')
        try:
            verify_source(point.id, fmt, point.details.get('manifest'), True)
            read_through(self.runner, options.connection, point.id, fmt)
        except EngineError as exc:
            return VerifyOutcome(False, count=1, damaged=[point.id], detail=str(exc))
        return VerifyOutcome(True)

    def retention(self, options, check_mode=False):
        """Dumps beyond keep / older than max_age, and dead runs' temporaries; never the min_keep newest complete."""
        return RetentionOutcome(prune(options.dest, options.db, options.min_keep, options.keep, options.max_age_seconds,
                                      check_mode=check_mode))

    def restore(self, options, check_mode=False):
        return restore(options, self.runner, check_mode)
