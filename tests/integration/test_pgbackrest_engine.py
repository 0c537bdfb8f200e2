# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgBackRest engine against a real PostgreSQL 15 cluster and the real pgBackRest 2.45, through the modules.

One cluster and one repository serve the whole module, in order: set up (check mode, restart withheld, restart
allowed, idempotent), full and incr backups, a refused restore target, kill -9 of a running backup, a corrupted
repository file found by verify. Encryption has a cluster of its own (a stanza's cipher is fixed when it is made).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess
import sys
import threading
import time

import pytest

from helpers.ansible import collections_path, run_module
from helpers.pgbackrest import PG_USER, PgBackRestSite, cmdlines_with, owner_names, stop_drill
from helpers.processes import kill_tree

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils.tools import pgbackrest as tool  # noqa: E402

START = time.time()


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    made = PgBackRestSite(str(tmp_path_factory.mktemp('pgbr')))
    made.start()
    yield made
    made.destroy()
    print('\ntest_pgbackrest_engine: %.1f s' % (time.time() - START))


def _stanza(site):
    """pgbackrest info of the site's stanza, read by the tool's own parser."""
    return tool.stanza_info(tool.parse_info(site.pgbackrest('info', '--output=json')[1]), site.stanza)


def _setting(site, name):
    return site.psql("SELECT setting || ' ' || pending_restart FROM pg_settings WHERE name = '%s'" % name)


def test_setup_is_honest_in_check_mode_withholds_the_restart_then_is_idempotent(site):
    planned = run_module('db_archive', site.archive_args(), check=True, diff=True)
    assert not planned['failed'], planned['msg']
    assert planned['changed'] and planned['config_changed'] and planned['restart_required']
    assert set(planned['settings_changed']) == {'archive_mode', 'archive_command', 'archive_timeout'}
    assert not os.path.exists(site.config) and _setting(site, 'archive_mode') == 'off false'
    assert 'repo1-path=%s' % site.repo in planned['diff']['after']
    # A check-mode run of the whole backup before anything exists: the first backup would be a full one.
    first = run_module('db_dump', site.dump_args('incr'), check=True)
    assert not first['failed'], first['msg']
    assert first['changed'] and first['backup_type'] == 'full' and first['backup_label'] is None

    withheld = run_module('db_archive', site.archive_args())
    assert not withheld['failed'], withheld['msg']
    assert withheld['changed'] and withheld['restart_required'] and not withheld['restarted']
    assert withheld['check_ok'] is None and withheld['stanza_created']
    # ALTER SYSTEM done and reloaded, but archive_mode waits for a restart nobody allowed.
    assert _setting(site, 'archive_mode') == 'off true'
    with open(os.path.join(site.pgdata, 'postgresql.auto.conf')) as handle:
        assert "archive_command = 'pgbackrest --config=%s --stanza=omero archive-push %%p'" % site.config in handle.read()
    assert owner_names(site.config) == ('root', PG_USER, 0o640)

    restarted = run_module('db_archive', site.archive_args(restart_allowed=True))
    assert not restarted['failed'], restarted['msg']
    assert restarted['changed'] and restarted['restarted'] and not restarted['restart_required']
    assert restarted['check_ok'] is True and _setting(site, 'archive_mode') == 'on false'

    again = run_module('db_archive', site.archive_args(restart_allowed=True))
    assert not again['failed'], again['msg']
    assert not again['changed'] and not again['restarted'] and again['check_ok'] is True
    assert not again['stanza_created'] and not again['config_changed'] and again['settings_changed'] == []


def test_full_and_incr_backups_report_label_wal_range_and_archived_time(site):
    full = run_module('db_dump', site.dump_args('full'))
    assert not full['failed'], full['msg']
    assert full['changed'] and full['backup_type'] == 'full' and tool.BACKUP_LABEL.match(full['backup_label'])
    assert full['backup_label'].endswith('F') and full['wal_start'] <= full['wal_stop']
    assert full['archived_until_epoch'] >= full['backup_stop'] and full['archived_until'].endswith('Z')
    site.psql('CREATE TABLE t AS SELECT generate_series(1, 1000) AS n')
    incr = run_module('db_dump', site.dump_args('incr'))
    assert not incr['failed'], incr['msg']
    assert incr['backup_type'] == 'incr' and incr['backup_prior'] == full['backup_label']
    assert incr['backup_label'].startswith(full['backup_label'] + '_') and incr['backup_label'].endswith('I')
    assert incr['wal_start'] > full['wal_stop'] and incr['repo_size'] < full['repo_size']
    assert [point['label'] for point in _stanza(site)['backups']] == [full['backup_label'], incr['backup_label']]
    recent = run_module('db_dump', site.dump_args('incr', skip_if_newer_than='1h'))
    assert not recent['changed'] and recent['skipped_dump'] and recent['backup_label'] == incr['backup_label']


def test_a_target_before_the_oldest_backup_is_refused_before_anything_is_touched(site):
    oldest = _stanza(site)['backups'][0]
    drill = os.path.join(site.root, 'drill-refused')
    early = tool.iso(oldest['start'] - 3600)
    refused = run_module('db_restore', site.restore_args(target_type='time', target_time=early, scratch_path=drill,
                                                         scratch_port=site.drill_port))
    assert refused['failed'] and not refused['changed']
    assert 'before the end of the oldest backup' in refused['msg'] and 'Nothing was changed' in refused['msg']
    assert not os.path.exists(drill)
    late = run_module('db_restore', site.restore_args(target_type='time', target_time=tool.iso(time.time() + 3600),
                                                      scratch_path=drill, scratch_port=site.drill_port))
    assert late['failed'] and 'after the newest WAL in the repository' in late['msg'] and not os.path.exists(drill)


def test_health_reports_backup_ages_archive_age_repository_size_and_check(site):
    found = run_module('db_archive', site.archive_args(state='health'))
    assert not found['failed'], found['msg']
    health = found['health']
    assert health['last_full_age_seconds'] >= 0 and health['last_incr_age_seconds'] >= 0
    assert health['last_diff_age_seconds'] is None
    assert health['wal_archive_age_seconds'] >= 0 and health['pg_wal_archive_age_seconds'] >= 0
    assert health['archive_failed_count'] == 0 and not health['archive_failing']
    assert health['repo_size_bytes'] > 0 and health['check_ok'] is True and not found['changed']


def _backup_process(site):
    """pgbackrest backup started as the cluster user would run it, in a session of its own."""
    argv = ['runuser', '-u', PG_USER, '--', 'pgbackrest', '--config=' + site.config, '--stanza=' + site.stanza,
            '--type=full', 'backup']
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def test_kill_9_mid_backup_then_the_next_backup_works(site):
    # Enough data that copying it takes a moment after the backup directory appears.
    site.psql('CREATE TABLE bulk AS SELECT n, md5(n::text) AS h FROM generate_series(1, 400000) AS n')
    before = set(os.listdir(os.path.join(site.repo, 'backup', site.stanza)))
    proc = _backup_process(site)
    deadline = time.time() + 60
    killed = False
    while time.time() < deadline and proc.poll() is None:
        now = set(os.listdir(os.path.join(site.repo, 'backup', site.stanza))) - before
        if any(name.endswith('F') for name in now):
            kill_tree(proc.pid)
            killed = True
            break
        time.sleep(0.02)
    proc.communicate()
    assert killed, 'the backup ended before it could be killed'
    after = run_module('db_dump', site.dump_args('full'))
    assert not after['failed'], after['msg']
    stanza = _stanza(site)
    assert stanza['backups'][-1]['label'] == after['backup_label'] and not stanza['backups'][-1]['error']
    assert not stanza['backup_locked'] and stanza['status'] == tool.STANZA_OK


def test_a_corrupted_repository_file_is_reported_by_verify(site):
    healthy = run_module('db_archive', site.archive_args(state='verify'))
    assert not healthy['failed'], healthy['msg']
    assert healthy['verify']['ok'] and healthy['verify']['damaged'] == []
    stanza = _stanza(site)
    label = stanza['backups'][-1]['label']
    victim_dir = os.path.join(site.repo, 'backup', site.stanza, label, 'pg_data', 'global')
    victim = os.path.join(victim_dir, sorted(name for name in os.listdir(victim_dir) if name.endswith('.lz4'))[0])
    with open(victim, 'rb') as handle:
        original = handle.read()
    try:
        with open(victim, 'r+b') as handle:
            handle.seek(len(original) // 2)
            handle.write(b'\xff' * 8)
        damaged = run_module('db_archive', site.archive_args(state='verify'))
        assert damaged['failed'] and 'verify' in damaged['msg']
        assert damaged['verify']['ok'] is False and damaged['verify']['backups'][label] == 'invalid'
        assert any(path.endswith(os.path.relpath(victim, os.path.join(site.repo, 'backup', site.stanza)))
                   for path in damaged['verify']['damaged'])
    finally:
        with open(victim, 'wb') as handle:
            handle.write(original)


@pytest.fixture(scope='module')
def encrypted(tmp_path_factory):
    made = PgBackRestSite(str(tmp_path_factory.mktemp('pgbrc')))
    made.start()
    yield made
    made.destroy()


def test_encryption_round_trip_keeps_the_pass_off_every_command_line(encrypted):
    site = encrypted
    secret = 'omero-cipher-' + os.urandom(12).hex()
    seen, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            seen.extend(cmdlines_with(secret, os.getpid()))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    drill = os.path.join(site.root, 'drill')
    try:
        setup = run_module('db_archive', site.archive_args(cipher_type='aes-256-cbc', cipher_pass=secret, restart_allowed=True))
        assert not setup['failed'], setup['msg']
        site.psql("CREATE TABLE secretive AS SELECT 'kept' AS word")
        backup = run_module('db_dump', site.dump_args('full'))
        assert not backup['failed'], backup['msg']
        restored = run_module('db_restore', site.restore_args(target_type='immediate', scratch_path=drill,
                                                              scratch_port=site.drill_port))
        assert not restored['failed'], restored['msg']
        assert site.psql('SELECT word FROM secretive', port=site.drill_port, host=drill) == 'kept'
    finally:
        stop.set()
        sampler.join()
        stop_drill(site, drill)
    # ansible-playbook's own process holds the pass in its extra-vars file, not on its command line.
    assert seen == []
    assert owner_names(site.config) == ('root', PG_USER, 0o640)
    with open(site.config) as handle:
        assert 'repo1-cipher-pass=%s' % secret in handle.read()
    for result in (setup, backup, restored):
        assert secret not in repr(result)
    with open(os.path.join(site.repo, 'backup', site.stanza, 'backup.info'), 'rb') as handle:
        head = handle.read(64)
    assert not head.startswith(b'[backrest]'), 'backup.info is not encrypted'
    removed = run_module('db_restore', site.restore_args(state='absent', scratch_path=drill))
    assert not removed['failed'] and removed['removed'] and not os.path.exists(drill)
