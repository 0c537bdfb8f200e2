# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the restic adapter and engine: locations, the sftp command, and restic 0.14's output as
captured on Debian 12 (restic 0.14.0)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shlex

import pytest

from ansible_collections.omero.backup.plugins.module_utils.engines.base import DATADIR, EngineError, Point, engine_for
from ansible_collections.omero.backup.plugins.module_utils.engines.restic import ResticEngine, keep_within, private_file
from ansible_collections.omero.backup.plugins.module_utils.tools import restic as tool

SNAPSHOTS = ('[{"time":"2026-12-03T10:17:38.467083707Z","parent":"063dc410d6b8ca7a70b750f61f14feb41b20b3fe03ca03634ee59195'
             '8bfd2129","tree":"6fe4","paths":["/tmp/x/extra/dump","/tmp/x/src"],"hostname":"h1","username":"root",'
             '"tags":["set-2"],"id":"d2d837aa00000000000000000000000000000000000000000000000000000000",'
             '"short_id":"d2d837aa"},'
             '{"time":"2026-12-03T10:17:24.916278231Z","tree":"6542","paths":["/tmp/x/src"],"hostname":"h1",'
             '"username":"root","tags":["set-1"],"id":"063dc410d6b8ca7a70b750f61f14feb41b20b3fe03ca03634ee591958bfd2129",'
             '"short_id":"063dc410"}]\n')
BACKUP = '\n'.join([
    '{"message_type":"error","error":{"Op":"open","Path":"secret","Err":13},"during":"archival",'
    '"item":"/tmp/rc/src/secret"}',
    '{"message_type":"summary","files_new":1,"files_changed":2,"files_unmodified":3,"dirs_new":0,"dirs_changed":0,'
    '"dirs_unmodified":0,"data_blobs":1,"tree_blobs":1,"data_added":365,"total_files_processed":6,'
    '"total_bytes_processed":2,"total_duration":0.227977098,"snapshot_id":"4e4d52c3"}', ''])
CHECK_SUBSET = '''using temporary cache in /tmp/restic-check-cache-1706262850
create exclusive lock for repository
load indexes
check all packs
check snapshots, trees and blobs
[0:00] 100.00%  3 / 3 snapshots

read group #1 of 1 data packs (out of total 3 packs in 3 groups)
[0:00] 100.00%  1 / 1 packs

no errors were found
'''
CHECK_DAMAGED = '''using temporary cache in /tmp/restic-check-cache-2432239117
create exclusive lock for repository
load indexes
check all packs
check snapshots, trees and blobs
read all data
[0:00] 100.00%  3 / 3 packs
error for tree ddb1305d:
  decrypting blob ddb1305dc698b275ebf02abbc2fc633a030dbca580e7e2932672dc2204bea1aa failed: ciphertext verification failed
Pack ID does not match, want 0cc4021e7322f30561a0daed585df740dfc6708e7a60b06b062a1b6da71d04cd, got 1f73d2dfe51d3ded
Fatal: repository contains errors
'''
LOCKED = '''unable to create lock in backend: repository is already locked by PID 28058 on vm by root (UID 0, GID 0)
lock was created at 2026-12-03 10:18:41 (3.47998403s ago)
storage ID 81d56bf2
the `unlock` command can be used to remove stale locks
'''
LOCK = '{\n  "time": "2026-12-03T10:18:41.363821586Z",\n  "exclusive": false,\n  "hostname": "vm",\n  "username": "root",\n  "pid": 28058\n}\n'
FORGET = ('[{"tags":null,"host":"h1","paths":null,"keep":[{"time":"2026-12-03T10:17:38Z","id":"aa"}],'
          '"remove":[{"time":"2026-12-03T10:17:24Z","id":"bb"},{"time":"2026-12-03T10:17:20Z","id":"cc"}],'
          '"reasons":[]}]')


def never_run(argv, env=None, data=None, cwd=None):
    raise AssertionError('nothing may run: %r' % (argv,))


@pytest.mark.parametrize('text, kind, spec', [
    ('/backup/restic/', 'local', '/backup/restic'),
    ('sftp:omero-backup@store.example:/backup/restic', 'sftp', 'sftp:omero-backup@store.example:/backup/restic'),
    ('sftp:store:/srv//r', 'sftp', 'sftp:store:/srv/r'),
    ('rest:http://127.0.0.1:8000/repo/', 'rest', 'rest:http://127.0.0.1:8000/repo'),
    ('s3:http://127.0.0.1:9000/bucket/omero', 's3', 's3:http://127.0.0.1:9000/bucket/omero'),
    ('s3:https://s3.example.org/bucket', 's3', 's3:https://s3.example.org/bucket'),
])
def test_locations(text, kind, spec):
    location = tool.parse_location(text)
    assert (location.kind, location.spec, location.is_remote) == (kind, spec, kind != 'local')


@pytest.mark.parametrize('text, message', [
    ('', 'is empty'),
    ('relative/repo', 'a restic repository is an absolute path'),
    ('sftp:host:relative', 'must be absolute'),
    ('sftp:ho st:/x', 'the host part'),
    ('sftp://host//x', 'URL form'),
    ('rest:http://user:secret@host:8000/', 'credentials in the repository URL'),
    ('s3:http://127.0.0.1:9000', 'needs a bucket'),
    ('b2:bucket:path', 'a restic repository is'),
])
def test_bad_locations_are_refused_with_the_reason(text, message):
    with pytest.raises(tool.ResticError, match=message):
        tool.parse_location(text)


def test_sftp_command_carries_the_ssh_options_and_no_password():
    command = tool.sftp_command('omero-backup@store', ssh_key='/root/.ssh/k y', ssh_port=2222,
                                ssh_options=['UserKnownHostsFile=/etc/omero-backup/known_hosts'])
    assert shlex.split(command) == ['ssh', '-o', 'BatchMode=yes', '-p', '2222', '-i', '/root/.ssh/k y', '-l',
                                    'omero-backup', '-o', 'UserKnownHostsFile=/etc/omero-backup/known_hosts', '-o',
                                    'ConnectTimeout=30', 'store', '-s', 'sftp']


def test_snapshots_oldest_first_with_epochs():
    snaps = tool.parse_snapshots(SNAPSHOTS)
    assert [snap['short_id'] for snap in snaps] == ['063dc410', 'd2d837aa']
    assert snaps[0]['tags'] == ['set-1'] and snaps[1]['paths'] == ['/tmp/x/extra/dump', '/tmp/x/src']
    assert snaps[0]['epoch'] == pytest.approx(1796293044.916278)
    assert tool.parse_snapshots('null') == [] and tool.parse_snapshots('') == []


def test_backup_summary_and_unreadable_files():
    summary, errors = tool.parse_backup(BACKUP)
    assert summary['snapshot_id'] == '4e4d52c3'
    assert tool.backup_counts(summary) == (6, 2, 3)
    assert errors == [{'path': '/tmp/rc/src/secret', 'op': 'open', 'errno': 13, 'during': 'archival'}]


def test_check_output():
    found = tool.parse_check(CHECK_SUBSET)
    assert (found['ok'], found['packs_read'], found['packs_total'], found['groups']) == (True, 1, 3, 3)
    found = tool.parse_check(CHECK_DAMAGED)
    assert found['ok'] is False and found['packs_read'] == 3
    assert tool.damaged_packs(found['errors']) == ['0cc4021e7322f30561a0daed585df740dfc6708e7a60b06b062a1b6da71d04cd']


def test_locks():
    assert tool.parse_locked_message(LOCKED) == (28058, 'vm', 'root')
    lock = tool.parse_lock(LOCK, 'id', now=1796293121.363821586 + 10)
    assert (lock['hostname'], lock['pid'], lock['exclusive'], lock['age']) == ('vm', 28058, False, 10.0)
    assert tool.parse_lock_ids('81d56bf23ec18df0022e2f11387b091f62986d43f1cf00a8e866cfca329a6de7\nnoise\n') == [
        '81d56bf23ec18df0022e2f11387b091f62986d43f1cf00a8e866cfca329a6de7']
    outcome = tool.Outcome('backup', 1, '', LOCKED)
    assert outcome.locked and not outcome.wrong_password


def test_forget_stats_and_ls():
    assert tool.parse_forget(FORGET) == (['aa'], ['bb', 'cc'])
    assert tool.parse_stats('{"total_size":4,"total_file_count":7,"snapshots_count":1}')['total_file_count'] == 7
    snapshot, nodes = tool.parse_ls('{"time":"2026-12-03T10:17:24Z","struct_type":"snapshot","id":"aa"}\n'
                                    '{"name":"a","type":"file","path":"/a\\ufffd\\ufffdb","struct_type":"node"}\n')
    assert snapshot['id'] == 'aa' and [node['path'] for node in nodes] == [u'/a\ufffd\ufffdb']
    # Go writes one U+FFFD per bad byte, Python one per bad sequence: both collapse to one.
    assert tool.ls_name(b'a\xed\xa0b') == tool.collapse_replacement(nodes[0]['path'])
    assert tool.ls_name(b'new\nline') == u'/new\nline'


@pytest.mark.parametrize('value, ok', [('1/7', True), ('5%', True), ('2.5%', True), ('500M', True), ('0/3', False),
                                       ('4/3', False), ('150%', False), ('some', False)])
def test_read_data_subset_values(value, ok):
    if ok:
        assert tool.check_subset(value) == value
    else:
        with pytest.raises(tool.ResticError):
            tool.check_subset(value)


def test_keep_within_rounds_up_to_hours():
    assert keep_within(8 * 7 * 86400) == '56d0h'
    assert keep_within(90 * 60) == '0d2h'


def test_secret_files_must_be_private(tmp_path):
    secret = tmp_path / 'pw'
    secret.write_text('x\n')
    os.chmod(str(secret), 0o640)
    with pytest.raises(EngineError, match='has mode 0640: a secret must be readable by its owner only'):
        private_file(str(secret), 'password_file')
    os.chmod(str(secret), 0o600)
    assert private_file(str(secret), 'password_file') == str(secret)
    engine = engine_for(DATADIR, 'restic', never_run, password_file=str(secret))
    repo = engine.parse_repository('s3:http://127.0.0.1:9/b/r', 'dest')
    with pytest.raises(EngineError, match='s3_access_key_id and s3_secret_access_key, or s3_credentials_file'):
        engine.environment(repo)
    engine = ResticEngine(never_run, password='pw', s3_access_key_id='AK', s3_secret_access_key='SK')
    assert engine.environment(repo) == {'RESTIC_PASSWORD': 'pw', 'AWS_ACCESS_KEY_ID': 'AK', 'AWS_SECRET_ACCESS_KEY': 'SK'}
    with pytest.raises(EngineError, match='needs the repository password'):
        ResticEngine(never_run).environment(repo)


def test_select_by_set_id_snapshot_id_and_time():
    engine = ResticEngine(never_run, password='x')
    points = [Point(snap['id'], snap['epoch'], 'snapshot', True, {'tags': snap['tags'], 'short_id': snap['short_id']})
              for snap in tool.parse_snapshots(SNAPSHOTS)]
    assert engine.select(points, 'latest').id.startswith('d2d837aa')
    assert engine.select(points, 'set-1').id.startswith('063dc410')
    assert engine.select(points, '063d').id.startswith('063dc410')
    assert engine.select(points, '1B').id.startswith('063dc410')
    assert engine.select(points, '2026-12-03T10:17:30Z').id.startswith('063dc410')
    with pytest.raises(EngineError, match='restic also takes a backup set id'):
        engine.select(points, 'no-such-set')


def test_excludes_are_anchored_and_escaped():
    engine = ResticEngine(never_run, password='x')
    expected = ['/data/\\[x\\]/BioFormatsCache', '/data/\\[x\\]/.omero-backup-restore.*']
    assert engine.excludes('/data/[x]', ['BioFormatsCache'])[:2] == expected


def test_bad_settings_fail_before_anything_runs():
    with pytest.raises(EngineError, match='verify_read_data'):
        ResticEngine(never_run, password='x', verify_read_data='most')
    with pytest.raises(EngineError, match='not both'):
        ResticEngine(never_run, password='x', password_file='/x')


def test_retention_policy_always_keeps_the_newest_snapshot():
    assert ResticEngine(never_run, password='x').retention_args(None) == []
    assert ResticEngine(never_run, password='x', keep_daily=7).retention_args(None) == [
        '--keep-daily', '7', '--keep-last', '1']
    assert ResticEngine(never_run, password='x', keep_last=3, keep_monthly=6).retention_args(8 * 7 * 86400) == [
        '--keep-last', '3', '--keep-monthly', '6', '--keep-within', '56d0h']
