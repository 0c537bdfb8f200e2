# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point-in-time restore with the pgBackRest engine, exactly, and WAL archiving while the store is down.

Real PostgreSQL 15 and pgBackRest 2.45 on one cluster for the module. Set up and the first backup run through the
steps in this process (the modules' own tests are test_pgbackrest_engine.py); the restore runs through the module.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import sys
import time

import pytest

from helpers.ansible import collections_path, run_module
from helpers.pgbackrest import PgBackRestSite, stop_drill

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils import db_archive, db_dump  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.tools import pgbackrest as tool  # noqa: E402

START = time.time()


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    made = PgBackRestSite(str(tmp_path_factory.mktemp('pitr')))
    made.start()
    db_archive.run(made.archive_args(restart_allowed=True), subprocess_runner)
    db_dump.dump(made.dump_args('full'), subprocess_runner)
    yield made
    made.destroy()
    print('\ntest_pgbackrest_pitr: %.1f s' % (time.time() - START))


def _commit_row(site, number):
    """One committed row; (clock before the commit, clock after it), then its WAL segment closed and archived."""
    before = float(site.psql('SELECT extract(epoch FROM clock_timestamp())'))
    site.psql('INSERT INTO pitr VALUES (%d, clock_timestamp())' % number)
    after = float(site.psql('SELECT extract(epoch FROM clock_timestamp())'))
    site.wait_archived(site.switch_wal())
    return before, after


def test_a_restore_to_a_time_between_two_commits_finds_exactly_the_rows_before_it(site):
    site.psql('CREATE TABLE pitr (n int PRIMARY KEY, at timestamptz NOT NULL)')
    times = {}
    for number in (1, 2, 3):
        times[number] = _commit_row(site, number)
        time.sleep(0.5)
    target = (times[2][1] + times[3][0]) / 2
    assert times[2][1] < target < times[3][0]
    drill = os.path.join(site.root, 'drill')
    try:
        restored = run_module('db_restore', site.restore_args(target_type='time', target_time=tool.target_text(target),
                                                              scratch_path=drill, scratch_port=site.drill_port))
        assert not restored['failed'], restored['msg']
        assert restored['changed'] and restored['started'] and restored['promoted']
        assert restored['target_type'] == 'time' and restored['restored_from'].endswith('F')
        rows = site.psql('SELECT n FROM pitr ORDER BY n', port=site.drill_port, host=drill)
        assert rows.split() == ['1', '2']
        # The source cluster went on untouched.
        assert site.psql('SELECT count(*) FROM pitr') == '3'
    finally:
        stop_drill(site, drill)
    removed = run_module('db_restore', site.restore_args(state='absent', scratch_path=drill))
    assert not removed['failed'] and removed['removed'] and not os.path.exists(drill)


def _health(site):
    return db_archive.run(site.archive_args(state='health', check=False), subprocess_runner)['health']


def _archive_dirs(site):
    root = os.path.join(site.repo, 'archive', site.stanza)
    return [os.path.join(base, name) for base, names, unused_files in os.walk(root) for name in names] + [root]


def _wait_failures(site, above, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        count = int(site.psql('SELECT failed_count FROM pg_stat_archiver'))
        if count > above:
            return count
        time.sleep(0.2)
    raise AssertionError('archive_command never failed')


def test_store_down_while_wal_archives_then_archiving_catches_up(site):
    before = _health(site)
    assert before['archive_failing'] is False and before['repo_error'] is None
    dirs = _archive_dirs(site)
    modes = dict((path, os.stat(path).st_mode & 0o7777) for path in dirs)
    try:
        # The store stops taking writes: the repository's archive becomes read-only for the cluster user.
        for path in dirs:
            os.chmod(path, 0o500)
        site.psql('CREATE TABLE during_outage AS SELECT 1 AS n')
        stuck = site.switch_wal()
        failures = _wait_failures(site, before['archive_failed_count'])
        assert site.psql('SELECT count(*) FROM during_outage') == '1', 'PostgreSQL stopped serving'
        down = _health(site)
        time.sleep(2)
        later = db_archive.run(site.archive_args(state='health', check_timeout=2), subprocess_runner)['health']
        assert down['archive_failing'] and later['archive_failing'] and later['archive_failed_count'] >= failures
        assert later['last_failed_wal'] >= stuck[:24] and later['last_archived_wal'] < stuck
        assert later['wal_archive_age_seconds'] >= down['wal_archive_age_seconds'] + 1.5
        assert later['pg_wal_archive_age_seconds'] >= down['pg_wal_archive_age_seconds'] + 1.5
        assert later['check_ok'] is False and later['check_error']
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)
    # The store is back: the next WAL switch wakes the archiver, which pushes the stuck segment and the new one.
    site.psql('INSERT INTO during_outage VALUES (2)')
    site.wait_archived(site.switch_wal(), timeout=90)
    after = _health(site)
    assert after['archive_failing'] is False and after['last_archived_wal'] > stuck
    assert after['wal_archive_age_seconds'] < later['wal_archive_age_seconds']
    assert after['archive_max'] >= stuck[:24]


def test_in_place_restore_needs_the_cluster_stopped_and_state_replaced_then_replays_every_archived_wal(site):
    site.psql('CREATE TABLE in_place AS SELECT 42 AS n')
    site.wait_archived(site.switch_wal())
    running = run_module('db_restore', site.restore_args(pg_path=site.pgdata, state='replaced'))
    assert running['failed'] and 'PostgreSQL is running' in running['msg'] and not running['changed']
    site.stop()
    try:
        present = run_module('db_restore', site.restore_args(pg_path=site.pgdata))
        assert present['failed'] and 'needs state=replaced' in present['msg']
        restored = run_module('db_restore', site.restore_args(pg_path=site.pgdata, state='replaced'))
        assert not restored['failed'], restored['msg']
        assert restored['changed'] and not restored['scratch'] and not restored['started']
        assert '--delta' in restored['commands'][-1] and '--type=default' in restored['commands'][-1]
    finally:
        site.start()
    # pg_ctl start returns once the restored cluster is consistent and takes read-only connections; it replays the
    # rest of the archive, then promotes.
    deadline = time.time() + 60
    while site.psql('SELECT pg_is_in_recovery()') != 'f' and time.time() < deadline:
        time.sleep(0.2)
    assert site.psql('SELECT pg_is_in_recovery()') == 'f'
    assert site.psql('SELECT n FROM in_place') == '42' and site.psql('SELECT count(*) FROM pitr') == '3'
