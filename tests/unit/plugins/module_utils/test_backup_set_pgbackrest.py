# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The set record's database component by engine: a pgBackRest backup label and archived WAL time complete it."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.omero.backup.plugins.module_utils.backup_set.schema import problems_of, schema_of, validate_component

PGBACKREST = {'host': 'db', 'engine': 'pgbackrest', 'stanza': 'omero', 'backup_label': '20261203-101500F_20261203-111500I',
              'backup_type': 'incr', 'backup_time': '2026-12-03T11:15:09Z', 'archived_until': '2026-12-03T11:15:40Z',
              'archived_until_epoch': 1796296540, 'complete': True}


def record(database):
    return {'set_id': '2026-12-03T111600Z', 'format_version': 2, 'server_host': 'omero', 'backup_dir': '/OMERO/backup',
            'dbname': 'omero', 'components': ['config', 'database', 'datadir'],
            'config': {'path': '/OMERO/backup/config.json', 'sha256': 'a' * 64, 'complete': True},
            'database': database,
            'datadir': {'src': '/OMERO', 'store': 'store:/srv', 'increment_time': '2026-12-03T11:16:00Z', 'complete': True},
            'complete': True}


def test_a_pgbackrest_component_needs_no_dump_file():
    assert problems_of(record(PGBACKREST)) == []


def test_a_pgbackrest_component_without_archived_time_is_incomplete():
    database = dict(PGBACKREST)
    del database['archived_until']
    assert problems_of(record(database)) == ['database.archived_until is missing']


def test_a_pg_dump_component_still_needs_its_dump():
    dump = {'host': 'db', 'engine': 'pg_dump', 'path': '/OMERO/backup/x', 'files': ['x'], 'complete': True}
    assert 'database.sha256 is missing' in problems_of(record(dump))
    assert schema_of('database', {})['sha256'][2] is True


def test_bad_label_and_engine_are_named():
    problems = validate_component('database', {'engine': 'barman', 'backup_label': 'latest'})
    assert [problem.split(' must ')[0] for problem in problems] == ['database.backup_label', 'database.engine']
