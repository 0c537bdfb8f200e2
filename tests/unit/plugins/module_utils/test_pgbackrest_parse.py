# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/pgbackrest's pure readers and writers, on output captured from pgBackRest 2.45, and the restore's choice of
backup and target."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest

from ansible_collections.omero.backup.plugins.module_utils import db_archive
from ansible_collections.omero.backup.plugins.module_utils.engines import pgbackrest_restore
from ansible_collections.omero.backup.plugins.module_utils.engines.pgbackrest import archived_until, backup_fields
from ansible_collections.omero.backup.plugins.module_utils.tools import pgbackrest as tool

# pgbackrest info --output=json after a full and an incr backup (pgBackRest 2.45, PostgreSQL 15).
INFO = [{
    "archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
                 "max": "000000010000000000000007", "min": "000000010000000000000001"}],
    "backup": [
        {"archive": {"start": "000000010000000000000005", "stop": "000000010000000000000005"},
         "backrest": {"format": 5, "version": "2.45"}, "database": {"id": 1, "repo-key": 1}, "error": False,
         "info": {"delta": 24000, "repository": {"delta": 4000, "size": 3100000}, "size": 23000000},
         "label": "20261203-102400F_20261203-102500I", "lsn": {"start": "0/5000028", "stop": "0/5000100"},
         "prior": "20261203-102400F", "reference": ["20261203-102400F"],
         "timestamp": {"start": 1796293500, "stop": 1796293502}, "type": "incr"},
        {"archive": {"start": "000000010000000000000002", "stop": "000000010000000000000003"},
         "backrest": {"format": 5, "version": "2.45"}, "database": {"id": 1, "repo-key": 1}, "error": False,
         "info": {"delta": 22992580, "repository": {"delta": 3043484, "size": 3043484}, "size": 22992580},
         "label": "20261203-102400F", "lsn": {"start": "0/2000028", "stop": "0/3000050"}, "prior": None,
         "reference": None, "timestamp": {"start": 1796293440, "stop": 1796293445}, "type": "full"}],
    "cipher": "none", "db": [{"id": 1, "repo-key": 1, "system-id": 7715021440507553434, "version": "15"}],
    "name": "omero", "repo": [{"cipher": "none", "key": 1, "status": {"code": 0, "message": "ok"}}],
    "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"}}]

MISSING = [{"archive": [], "backup": [], "cipher": "none", "db": [], "name": "omero",
            "repo": [{"cipher": "none", "key": 1, "status": {"code": 1, "message": "missing stanza path"}}],
            "status": {"code": 1, "lock": {"backup": {"held": False}}, "message": "missing stanza path"}}]

VERIFY_OK = """stanza: omero
status: ok
  archiveId: 15-1, total WAL checked: 3, total valid WAL: 3
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261203-102400F, status: valid, total files checked: 964, total valid files: 964
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""

VERIFY_DAMAGED = """2026-12-03 10:23:52.485 P01   INFO: invalid checksum '20261203-102400F/pg_data/base/1/1247.lz4'
2026-12-03 10:23:52.504 P00   INFO: stanza: omero
                                    status: error
stanza: omero
status: error
  archiveId: 15-1, total WAL checked: 3, total valid WAL: 3
  backup: 20261203-102400F, status: invalid, total files checked: 964, total valid files: 963
    checksum invalid: 1
2026-12-03 10:23:52.600 P00   INFO: verify command end: completed successfully (120ms)
"""


def test_info_lists_backups_oldest_first_with_their_wal_range():
    stanza = tool.stanza_info(tool.parse_info(json.dumps(INFO)), 'omero')
    assert stanza['status'] == tool.STANZA_OK and not stanza['backup_locked']
    assert [b['label'] for b in stanza['backups']] == ['20261203-102400F', '20261203-102400F_20261203-102500I']
    full, incr = stanza['backups']
    assert (full['wal_start'], full['wal_stop'], full['stop']) == ('000000010000000000000002', '000000010000000000000003',
                                                                   1796293445)
    assert incr['prior'] == full['label'] and incr['repo_delta'] == 4000 and incr['type'] == 'incr'
    assert (stanza['archive_id'], stanza['archive_max']) == ('15-1', '000000010000000000000007')


def test_info_of_a_missing_stanza_and_bad_output():
    stanza = tool.stanza_info(tool.parse_info(json.dumps(MISSING)), 'omero')
    assert stanza['status'] == tool.STANZA_MISSING and stanza['backups'] == [] and stanza['archive_max'] is None
    assert tool.stanza_info(tool.parse_info('[]'), 'omero') is None
    with pytest.raises(tool.PgBackRestError, match='printed no JSON'):
        tool.parse_info('ERROR: [055]: unable to load info file')


def test_archived_until_is_the_newest_wal_never_before_the_newest_backup():
    stanza = tool.stanza_info(tool.parse_info(json.dumps(INFO)), 'omero')
    assert archived_until(stanza, ('000000010000000000000007', 1796293600)) == 1796293600
    assert archived_until(stanza, None) == 1796293502
    fields = backup_fields(stanza, stanza['backups'][-1], ('000000010000000000000007', 1796293600))
    assert fields['backup_label'] == '20261203-102400F_20261203-102500I' and fields['archived_until'] == '2026-12-03T10:26:40Z'
    assert fields['backup_time'] == '2026-12-03T10:25:02Z' and fields['archive_max'] == '000000010000000000000007'


def test_newest_wal_skips_backup_and_history_files():
    entries = tool.parse_repo_ls(json.dumps({
        ".": {"type": "path"},
        "0000000100000000": {"type": "path"},
        "0000000100000000/000000010000000000000002-ec7e22be.gz": {"type": "file", "size": 16528, "time": 1796293416},
        "0000000100000000/000000010000000000000002.00000028.backup": {"type": "file", "size": 371, "time": 1796293499},
        "0000000100000000/000000010000000000000003-84ab995f.gz": {"type": "file", "size": 16383, "time": 1796293421},
        "00000002.history": {"type": "file", "size": 41, "time": 1796293999}}))
    assert tool.newest_wal(entries) == ('000000010000000000000003', 1796293421)
    assert tool.tree_size(entries) == 16528 + 371 + 16383 + 41
    assert tool.newest_wal({}) is None


@pytest.mark.parametrize('text, code, hint', [
    ('ERROR: [050]: unable to acquire lock on file \'/tmp/pgbackrest/omero-backup.lock\'', 50, 'stanza lock'),
    ('P00  ERROR: [082]: WAL segment 000000010000000000000009 was not archived before the 60000ms timeout', 82,
     'pg_stat_archiver'),
    ('ERROR: [038]: unable to restore while PostgreSQL is running', 38, 'stop PostgreSQL first'),
])
def test_errors_are_named_and_explained(text, code, hint):
    assert tool.parse_error('INFO: something\n' + text)[0] == code
    message = tool.explain('backup', code, '', text)
    assert message.startswith('pgbackrest backup failed (rc %d, %s)' % (code, tool.EXIT_NAMES[code])) and hint in message


def test_an_error_without_a_code_keeps_the_tail():
    assert tool.parse_error('runuser: user pgbackrest does not exist') == (None, 'runuser: user pgbackrest does not exist')


def test_verify_ok_and_damaged():
    ok = tool.parse_verify(VERIFY_OK)
    assert ok['ok'] and ok['status'] == 'ok' and ok['damaged'] == [] and ok['archives'] == {'15-1': (3, 3)}
    damaged = tool.parse_verify(VERIFY_DAMAGED)
    assert not damaged['ok'] and damaged['status'] == 'error'
    assert damaged['damaged'] == ['20261203-102400F/pg_data/base/1/1247.lz4']
    assert damaged['backups'] == {'20261203-102400F': 'invalid'}
    # pgBackRest prints nothing at all without --verbose when all is well: no status is no proof.
    assert not tool.parse_verify('')['ok']


def test_config_is_deterministic_and_the_pass_is_masked():
    text = tool.render_config([('repo1-path', '/srv/pgbackrest'), ('repo1-cipher-type', 'aes-256-cbc'),
                               ('repo1-cipher-pass', 's3cret'), ('log-path', None), ('start-fast', True)],
                              'omero', [('pg1-path', '/var/lib/postgresql/15/main'), ('pg1-port', 5432)], comment='managed')
    assert text == ('# managed\n[global]\nrepo1-path=/srv/pgbackrest\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=s3cret\n'
                    'start-fast=y\n\n[omero]\npg1-path=/var/lib/postgresql/15/main\npg1-port=5432\n')
    assert 's3cret' not in tool.masked_config(text) and 'repo1-cipher-pass=********' in tool.masked_config(text)
    assert tool.parse_config(text)['omero']['pg1-port'] == '5432'
    with pytest.raises(tool.PgBackRestError, match='line break'):
        tool.render_config([('repo1-cipher-pass', 'a\nrepo1-path=/elsewhere')], 'omero', [])
    with pytest.raises(tool.PgBackRestError, match='stanza'):
        tool.render_config([], 'om ero', [])


def test_archive_command_names_the_config_and_no_secret():
    assert tool.archive_command('/etc/pgbackrest/pgbackrest.conf', 'omero') == \
        'pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=omero archive-push %p'


@pytest.mark.parametrize('text, epoch', [
    ('2026-12-03T10:30:00Z', 1796293800),
    ('2026-12-03 10:30:00', 1796293800),
    ('2026-12-03 11:30:00+01:00', 1796293800),
    ('2026-12-03T10:30:00.250000+00', 1796293800.25),
])
def test_target_times(text, epoch):
    assert tool.epoch_of_target(text) == pytest.approx(epoch)


def test_target_text_keeps_microseconds_in_utc():
    assert tool.target_text(1796293800.25) == '2026-12-03 10:30:00.250000+00'
    with pytest.raises(tool.PgBackRestError, match='ISO 8601'):
        tool.epoch_of_target('yesterday')


class Options(object):
    def __init__(self, **values):
        self.stanza, self.set, self.target_type, self.target_time = 'omero', None, 'time', None
        self.__dict__.update(values)


def _stanza():
    return tool.stanza_info(tool.parse_info(json.dumps(INFO)), 'omero')


def test_the_restore_takes_the_newest_backup_that_ended_before_the_target():
    backup, target = pgbackrest_restore.choose(_stanza(), Options(target_time='2026-12-03T10:24:30Z'), 1796293600)
    assert backup['label'] == '20261203-102400F' and target == 1796293470
    backup, target = pgbackrest_restore.choose(_stanza(), Options(target_time='2026-12-03T10:26:00Z'), 1796293600)
    assert backup['label'] == '20261203-102400F_20261203-102500I'
    backup, target = pgbackrest_restore.choose(_stanza(), Options(target_type='immediate'), 1796293600)
    assert backup['label'] == '20261203-102400F_20261203-102500I' and target is None


@pytest.mark.parametrize('when, message', [
    ('2026-12-03T10:00:00Z', 'before the end of the oldest backup'),
    ('2026-12-03T10:30:00Z', 'after the newest WAL in the repository'),
])
def test_a_target_outside_the_archived_range_is_refused(when, message):
    with pytest.raises(pgbackrest_restore.RestoreRefused, match=message):
        pgbackrest_restore.choose(_stanza(), Options(target_time=when), 1796293600)


def test_a_named_backup_must_exist_and_end_before_the_target():
    with pytest.raises(pgbackrest_restore.RestoreRefused, match='holds no complete backup 20261203-000000F'):
        pgbackrest_restore.choose(_stanza(), Options(set='20261203-000000F', target_type='default'), 1796293600)
    with pytest.raises(pgbackrest_restore.RestoreRefused, match='cannot be restored to an earlier time'):
        pgbackrest_restore.choose(_stanza(), Options(set='20261203-102400F_20261203-102500I',
                                                     target_time='2026-12-03T10:24:30Z'), 1796293600)


class Recorder(object):
    """An injected runner that records argv and answers like pgBackRest."""

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def __call__(self, argv, env=None, data=None, cwd=None):
        self.calls.append((list(argv), env))
        return self.answers.pop(0)


def test_the_adapter_puts_config_and_stanza_first_and_arguments_after_the_command():
    runner = Recorder([(0, json.dumps({'.': {'type': 'path'}}), ''), (0, json.dumps(INFO), '')])
    found = tool.PgBackRest(runner, '/etc/pgbackrest/omero.conf', 'omero')
    assert found.repo_ls('archive/omero/15-1', recurse=True) == {}
    assert found.info()['name'] == 'omero'
    assert runner.calls[0][0][-6:] == ['--config=/etc/pgbackrest/omero.conf', '--stanza=omero', '--output=json', '--recurse',
                                       'repo-ls', 'archive/omero/15-1']
    assert runner.calls[1][0][-2:] == ['--output=json', 'info'] and runner.calls[1][1] == {'LC_ALL': 'C'}


def test_the_adapter_raises_explained_errors():
    runner = Recorder([(50, '', 'ERROR: [050]: unable to acquire lock')])
    with pytest.raises(tool.PgBackRestError, match='lock-acquire') as caught:
        tool.PgBackRest(runner, '/c', 'omero').backup('full')
    assert caught.value.rc == 50
    with pytest.raises(tool.PgBackRestError, match='backup type'):
        tool.PgBackRest(runner, '/c', 'omero').backup('weekly')


def _options(**values):
    params = dict(pg_path='/var/lib/postgresql/15/main', repo_path='/srv/pgbackrest', stanza='omero')
    params.update(values)
    return db_archive.ArchiveOptions(params)


def test_the_database_side_with_a_repository_host_holds_no_cipher_pass():
    text = db_archive.config_text(_options(repo_host='store', cipher_type='aes-256-cbc', cipher_pass='s3cret', repo_path=None))
    assert 's3cret' not in text and 'repo1-host=store' in text and 'repo1-path' not in text
    local = db_archive.config_text(_options(cipher_type='aes-256-cbc', cipher_pass='s3cret'))
    assert 'repo1-cipher-pass=s3cret' in local and 'repo1-path=/srv/pgbackrest' in local
    repository = db_archive.config_text(_options(side='repository', pg_host='db', cipher_type='aes-256-cbc', cipher_pass='s'))
    assert 'pg1-host=db' in repository and 'pg1-host-user=postgres' in repository and 'repo1-cipher-pass=s' in repository


@pytest.mark.parametrize('values, message', [
    ({'cipher_type': 'aes-256-cbc'}, 'needs cipher_pass'),
    ({'cipher_pass': 'x'}, 'cipher_type is none'),
    ({'repo_path': None}, 'repo_path is required'),
    ({'side': 'repository'}, 'needs pg_host'),
    ({'retention_full': 0}, 'retention_full'),
    ({'stanza': '../x'}, 'stanza'),
])
def test_bad_setup_options_are_refused(values, message):
    with pytest.raises(db_archive.DbArchiveError, match=message):
        _options(**values).validate()


def test_the_health_becomes_metrics():
    from ansible_collections.omero.backup.plugins.module_utils.status import render_metrics, updated_status
    health = {'stanza': 'omero', 'checked_at_epoch': 1796293700.0, 'last_full_epoch': 1796293445, 'last_full_age_seconds': 255.0,
              'last_diff_epoch': None, 'last_diff_age_seconds': None, 'last_incr_epoch': 1796293502,
              'last_incr_age_seconds': 198.0, 'wal_archive_age_seconds': 12.5, 'pg_wal_archive_age_seconds': 11.0,
              'archive_failed_count': 3, 'archive_failing': True, 'repo_size_bytes': 3200000, 'check_ok': False}
    status, unused_changed = updated_status({}, 'backup', 'succeeded', 1796293701.0, details={'pgbackrest': health})
    text = render_metrics(status)
    labels = 'job="backup",stanza="omero"'
    for line in ('omero_backup_wal_archive_age_seconds{%s,source="pgbackrest"} 12.5' % labels,
                 'omero_backup_wal_archive_age_seconds{%s,source="postgresql"} 11.0' % labels,
                 'omero_backup_pgbackrest_last_backup_age_seconds{%s,type="full"} 255.0' % labels,
                 'omero_backup_pgbackrest_last_backup_timestamp_seconds{%s,type="incr"} 1796293502' % labels,
                 'omero_backup_pgbackrest_archive_failures{%s} 3' % labels,
                 'omero_backup_pgbackrest_archive_failing{%s} 1' % labels,
                 'omero_backup_pgbackrest_check_success{%s} 0' % labels,
                 'omero_backup_pgbackrest_repo_bytes{%s} 3200000' % labels):
        assert line in text.splitlines()
    assert 'type="diff"' not in text
    assert 'pgbackrest' not in render_metrics(updated_status({}, 'backup', 'succeeded', 1.0)[0])


def test_a_target_within_the_second_of_the_newest_wal_is_in_range():
    # repo-ls gives whole seconds: the newest segment listed at 10:26:40 arrived before 10:26:41.
    backup, target = pgbackrest_restore.choose(_stanza(), Options(target_time='2026-12-03T10:26:40.900Z'), 1796293600)
    assert backup['label'].endswith('I') and target == pytest.approx(1796293600.9)


# What archive_command left in the PostgreSQL log while the repository was read-only (the store-down test).
ARCHIVE_PUSH_FAILED = """ERROR: [104]: archive-push command encountered error(s):
       repo1: [FileOpenError] unable to open file '/srv/repo/archive/omero/15-1/0000000100000000/07-d420.lz4' for write: [13] Permission denied
2026-12-03 10:50:52.989 UTC [2930] LOG:  archive command failed with exit code 104
2026-12-03 10:50:52.989 UTC [2930] DETAIL:  The failed archive command was: pgbackrest --stanza=omero archive-push pg_wal/0000000100000000000007
"""


def test_archive_push_errors_name_the_repository_and_the_cause():
    assert tool.parse_archive_errors(ARCHIVE_PUSH_FAILED) == [{
        'code': 104, 'repo': 'repo1', 'kind': 'FileOpenError',
        'message': "unable to open file '/srv/repo/archive/omero/15-1/0000000100000000/07-d420.lz4' "
                   "for write: [13] Permission denied"}]
    code, message = tool.parse_error(ARCHIVE_PUSH_FAILED)
    assert code == tool.RC_COMMAND and 'repo1: unable to open file' in message and '(FileOpenError)' in message
    assert tool.parse_archive_errors('LOG:  checkpoint complete') == []
