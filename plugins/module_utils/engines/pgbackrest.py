# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgBackRest engine of the database: a DatabaseEngine over pgBackRest 2.45 (tools/pgbackrest.py).

Its points are the backups of one stanza (labels such as ``20261203-101500F_20261203-111500I``) with their WAL
range; WAL is archived continuously between them by PostgreSQL's archive_command (set up by the db_archive step),
so a restore reaches any second from the oldest backup's end to the newest archived WAL. A backup is one
``pgbackrest backup --type=full|diff|incr``; pgBackRest expires old backups after it (``repo1-retention-full`` of
the configuration file), and the result names what went. The restore is engines/pgbackrest_restore.py; the
health facts (backup ages, WAL archive age, failures, repository size) are ``health_facts``.

``options`` is the step's options object: ``stanza``, ``config``, ``os_user``, and for a backup ``type``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time

from ansible_collections.omero.backup.plugins.module_utils.engines.base import (
    BackupOutcome, DatabaseEngine, EngineError, Health, Point, RetentionOutcome, VerifyOutcome)
from ansible_collections.omero.backup.plugins.module_utils.tools import pgbackrest as tool


class PgBackRestEngineError(EngineError):
    """A pgBackRest backup, verify or restore refused or failed, explained."""


def _point(backup):
    return Point(backup['label'], backup['stop'], backup['type'], complete=not backup['error'], details=backup)


def archived_until(stanza, newest):
    """Epoch up to which WAL is in the repository: the newest archived segment's arrival there, and never before
    the newest backup's end (a backup waits until the WAL that makes it consistent is archived)."""
    candidates = [backup['stop'] for backup in stanza['backups'] if backup['stop'] and not backup['error']]
    if newest and newest[1]:
        candidates.append(newest[1])
    return max(candidates) if candidates else None


class PgBackRestEngine(DatabaseEngine):
    """pgBackRest backups of one stanza; restores to a point in time (engines/pgbackrest_restore.py)."""

    name = 'pgbackrest'

    def __init__(self, runner):
        super(PgBackRestEngine, self).__init__(runner)
        self._tools = {}

    def tool(self, options):
        key = (options.config, options.stanza, options.os_user)
        if key not in self._tools:
            self._tools[key] = tool.PgBackRest(self.runner, options.config, options.stanza, os_user=options.os_user)
        return self._tools[key]

    def _log(self, found):
        self.commands = list(found.commands)

    def stanza(self, options):
        """parse_info's entry of the stanza; refuses a stanza pgBackRest does not know (db_archive makes it)."""
        found = self.tool(options)
        try:
            stanza = found.info()
        except tool.PgBackRestError as exc:
            raise PgBackRestEngineError(str(exc))
        finally:
            self._log(found)
        if stanza['status'] in (tool.STANZA_MISSING, tool.STANZA_NO_DATA):
            raise PgBackRestEngineError('pgBackRest stanza %s is not set up (%s): run omero.backup.db_archive first'
                                        % (options.stanza, stanza['message']))
        return stanza

    def health(self, options):
        found = self.tool(options)
        try:
            version = found.version()
        except tool.PgBackRestError as exc:
            raise PgBackRestEngineError(str(exc))
        return Health(True, version=version)

    def list(self, options):
        """The backups of the stanza, oldest first (Point.id the label, epoch its end, kind full/diff/incr)."""
        return [_point(backup) for backup in self.stanza(options)['backups']]

    def backup(self, options, check_mode=False):
        """One backup of ``options.type``; its label, WAL range and the archived-up-to time in the details."""
        found = self.tool(options)
        before = self.stanza(options)
        started = time.time()
        if check_mode:
            prior = [backup for backup in before['backups'] if not backup['error']]
            kind = options.type if prior else 'full'
            warnings = [] if kind == options.type else ['no backup yet: pgBackRest makes a full backup, not %s' % options.type]
            return BackupOutcome(None, warnings=warnings, details={'backup_type': kind, 'backup_label': None,
                                                                   'msg': 'would take a %s backup of stanza %s'
                                                                   % (kind, options.stanza)})
        try:
            found.backup(options.type)
        except tool.PgBackRestError as exc:
            raise PgBackRestEngineError(str(exc), details={'commands': found.commands})
        finally:
            self._log(found)
        after = self.stanza(options)
        seconds = round(time.time() - started, 3)
        labels_before = set(backup['label'] for backup in before['backups'])
        made = [backup for backup in after['backups'] if backup['label'] not in labels_before]
        if not made:
            raise PgBackRestEngineError('pgbackrest backup ended without error but info lists no new backup of stanza %s'
                                        % options.stanza)
        backup = made[-1]
        labels_after = set(item['label'] for item in after['backups'])
        expired = sorted(label for label in labels_before if label not in labels_after)
        fields = backup_fields(after, backup, self.archive_newest(options, after))
        fields.update(duration=seconds, pruned=expired)
        warnings = []
        if backup['type'] != options.type:
            warnings.append('pgBackRest made a %s backup, not the %s asked for (no prior backup it could be based on)'
                            % (backup['type'], options.type))
        return BackupOutcome(_point(backup), bytes=backup['size'], seconds=seconds, warnings=warnings, details=fields)

    def archive_newest(self, options, stanza):
        """(segment, epoch) of the newest WAL in the repository for the stanza's current database, or None."""
        found = self.tool(options)
        try:
            return found.archive_newest(stanza['archive_id'])
        except tool.PgBackRestError as exc:
            raise PgBackRestEngineError(str(exc))
        finally:
            self._log(found)

    def verify(self, point, options):
        """pgbackrest verify of the backup ``point`` names (and the WAL it needs); damaged repository files named."""
        found = self.tool(options)
        started = time.time()
        try:
            report = found.verify(point.id if point is not None else None)
        except tool.PgBackRestError as exc:
            return VerifyOutcome(False, detail=str(exc), seconds=round(time.time() - started, 3))
        finally:
            self._log(found)
        return VerifyOutcome(report['ok'], count=len(report['damaged']), damaged=report['damaged'][:20],
                             seconds=round(time.time() - started, 3),
                             detail='; '.join(report['problems'][:5]) or 'status %s' % report['status'],
                             details={'status': report['status'], 'backups': report['backups']})

    def retention(self, options, check_mode=False):
        """pgbackrest expire by the configuration's retention (in check mode --dry-run): the labels it removes."""
        found = self.tool(options)
        before = self.stanza(options)
        try:
            if check_mode:
                unused_rc, out, err = found.expire(['--dry-run', '--log-level-console=info'])
                removed = sorted(set(tool.BACKUP_LABEL_IN_TEXT.findall((out or '') + (err or ''))))
                return RetentionOutcome(removed, len(before['backups']) - len(removed))
            found.expire()
        except tool.PgBackRestError as exc:
            raise PgBackRestEngineError(str(exc))
        finally:
            self._log(found)
        after = set(backup['label'] for backup in self.stanza(options)['backups'])
        removed = sorted(backup['label'] for backup in before['backups'] if backup['label'] not in after)
        return RetentionOutcome(removed, len(after))

    def restore(self, options, check_mode=False):
        from ansible_collections.omero.backup.plugins.module_utils.engines.pgbackrest_restore import restore
        return restore(self, options, check_mode)


def backup_fields(stanza, backup, newest):
    """The result fields of one backup (db_dump's result, the set record's database component)."""
    until = archived_until(stanza, newest)
    return {
        'backup_label': backup['label'], 'backup_type': backup['type'], 'backup_prior': backup['prior'],
        'backup_start': backup['start'], 'backup_stop': backup['stop'], 'backup_time': tool.iso(backup['stop']),
        'wal_start': backup['wal_start'], 'wal_stop': backup['wal_stop'],
        'lsn_start': backup['lsn_start'], 'lsn_stop': backup['lsn_stop'],
        'size': backup['size'], 'repo_size': backup['repo_delta'],
        'archive_max': newest[0] if newest else stanza['archive_max'],
        'archived_until': tool.iso(until), 'archived_until_epoch': until,
        'stanza': stanza['name'],
    }
