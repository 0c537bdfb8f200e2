# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine seam without Ansible: engines built by engines.base.engine_for with an injected runner back up and
restore the sandbox's data dir (real rdiff-backup) and database (real PostgreSQL, pg_dump, pg_restore).

This is what a step does through the interface only, and what the next engines (restic, pgBackRest) must pass.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import stat
import sys

import pytest

from helpers.ansible import collections_path
from helpers.tree import entry_content
from helpers.sandbox import connection_args, psycopg2_connect, query

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.db_dump import DumpOptions  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.db_restore import RestoreOptions  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.engines.base import (  # noqa: E402
    DATABASE, DATADIR, engine_for, exclude_patterns)

RESTORED_DB = 'engines_seam_restored'


class RecordingRunner(object):
    """The runner injected into the engine: runs for real and keeps every argv, so the test sees what ran."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv, env=None, data=None, cwd=None):
        self.calls.append(list(argv))
        return subprocess_runner(argv, env=env, data=data, cwd=cwd)


def tree(root, skip_top=()):
    """relpath (bytes) -> (type, sha256 of a file or a link's target) below root."""
    root = os.fsencode(root)
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            relpath = os.path.normpath(os.path.join(rel_dir, name))
            parts = relpath.split(b'/')
            # What the default exclusions leave out: top-level caches, and stale .lock files under .omero.
            if parts[0] in skip_top or (parts[-1] == b'.lock' and b'.omero' in parts):
                continue
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            entries[relpath] = (stat.S_IFMT(info.st_mode), entry_content(path, info))
    return entries


@pytest.mark.skipif(not shutil.which('rdiff-backup'), reason='rdiff-backup is not installed')
def test_datadir_backup_verify_and_restore_through_engine_for(sandbox, tmp_path):
    runner = RecordingRunner()
    engine = engine_for(DATADIR, 'rdiff-backup', runner)
    src = os.path.realpath(sandbox['datadir'])
    repo = engine.parse_repository(str(tmp_path / 'repo'), 'dest')
    assert engine.health(repo, exists=False).ok and engine.health(repo, exists=True).problems

    # Check mode plans the command and writes nothing.
    excludes = engine.excludes(src, exclude_patterns(None))
    assert engine.backup(src, repo, excludes, check_mode=True) is None and not os.path.exists(repo.path)
    made = engine.backup(src, repo, excludes)
    assert made.point.complete and made.files > 10 and not made.regressed
    points = engine.list(repo)
    assert [point.epoch for point in points] == [made.point.epoch]
    assert engine.verify(repo).ok is True
    marked = os.path.join(src, '.omero', 'repository')
    assert engine.repository_uuids(repo, points[-1]) == sorted(
        name for name in os.listdir(marked) if os.path.isfile(os.path.join(marked, name, 'repo_uuid')))

    into = str(tmp_path / 'restored')
    os.mkdir(into)
    point = engine.select(points, 'now')
    restored = engine.restore(repo, point, into)
    assert restored.problems == [] and restored.rc == 0
    relpaths = [os.path.relpath(os.path.join(d, n), os.fsencode(into))
                for d, dirs, files in os.walk(os.fsencode(into)) for n in dirs + files]
    assert engine.missing(repo, point, relpaths) == []
    assert tree(into) == tree(src, skip_top=(b'BioFormatsCache',))
    # Retention never removes the only (newest) point.
    assert engine.retention(repo, points, 1, made.point.epoch + 3600).removed == []

    # Everything the engine ran came through the injected runner, and it logged each action it ran (and, in check
    # mode or with nothing to remove, the ones it would run); reads (version, listings) are not logged.
    ran = [argv for argv in runner.calls if set(argv) & {'backup', 'verify', 'restore', 'remove'}]
    assert len(ran) == 3 and all(argv in engine.commands for argv in ran)
    assert engine.commands.count(ran[0]) == 2  # the check-mode plan, then the backup itself
    assert all(argv[0] == 'rdiff-backup' for argv in runner.calls)


def test_database_dump_verify_and_restore_through_engine_for(sandbox, tmp_path):
    runner = RecordingRunner()
    engine = engine_for(DATABASE, 'pg_dump', runner)
    connection = connection_args(sandbox)
    dest = tmp_path / 'database'
    dest.mkdir(mode=0o700)
    dump_options = DumpOptions.from_params(dict(
        connection, login_password=connection.get('login_password'), login_unix_socket=connection.get('login_unix_socket'),
        connect_timeout=10, dest=str(dest), format='custom', jobs=1, compress=None, globals=False, min_size=0,
        server_stopped=False, skip_if_newer_than=None, min_keep=1, keep=None, max_age=None, owner=None, group=None,
        pg_bindir=None, engine='pg_dump'))
    assert engine.health(dump_options).ok
    made = engine.backup(dump_options)
    assert made.point.complete and made.point.id == made.details['path'] and made.bytes > 0
    points = engine.list(dump_options)
    assert [point.id for point in points] == [made.point.id]
    assert engine.verify(points[-1], dump_options).ok is True
    assert engine.retention(dump_options).removed == []

    restore_options = RestoreOptions(dict(connection, src=made.point.id, db=RESTORED_DB, lock_dir=sandbox['root']))
    try:
        result = engine.restore(restore_options)
        assert result['changed'] and result['restored_from'] == made.point.id and result['analyzed']
        count = 'SELECT count(*) FROM public.originalfile'
        assert query(sandbox, count, dbname=RESTORED_DB) == query(sandbox, count, dbname=sandbox['postgres']['dbname'])
        again = engine.restore(restore_options)
        assert not again['changed']
    finally:
        conn = psycopg2_connect(sandbox, dbname='postgres')
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % RESTORED_DB)
        finally:
            conn.close()
    assert any(argv[0].endswith('pg_dump') for argv in runner.calls)
    assert any(argv[0].endswith('pg_restore') for argv in runner.calls)
