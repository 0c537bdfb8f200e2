# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.backup_set and backup_set_info through the real ansible-playbook: write, an unchanged re-run, check
mode, diff, list, read latest, prune; and what they refuse to read (a symlinked record, another user's, one others can
write)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import pwd
import subprocess

import pytest

from helpers.ansible import REPO_ROOT, module_results, run_module, run_playbook

SHA = {'config': 'a' * 64, 'other': 'b' * 64, 'dump': 'c' * 64}


def present_args(store, increment='2026-11-26T08:30:00Z', changed=True):
    return dict(
        state='present', store_path=str(store), server_host='omero.example.org', database_host='db.example.org',
        store_host='store.example.org', backup_dir='/OMERO/backup', dbname='omero', consistent=True,
        config={'path': '/OMERO/backup/config/omero.config', 'sha256': SHA['config'], 'omero_version': '5.6.10',
                'changed': changed},
        other_sources={'archive': '/OMERO/backup/config/other-sources.tar.gz', 'sha256': SHA['other'],
                       'sources': ['opt/omero/server/OMERO.server/lib/scripts'], 'changed': False},
        database={'host': 'db.example.org', 'path': '/OMERO/backup/database/omero.pg_dump', 'files': ['omero.pg_dump'],
                  'sha256': SHA['dump'], 'size': 4096, 'schema_version': 'OMERO5.4', 'schema_patch': 0,
                  'db_uuid': 'uuid-1', 'server_stopped': True, 'changed': changed},
        datadir={'src': '/OMERO', 'store': 'store.example.org:/srv/backup/omero/datadir', 'increment_time': increment,
                 'files': 3, 'bytes': 30, 'warnings': [], 'changed': changed})


def set_files(store):
    sets = os.path.join(str(store), 'sets')
    found = {}
    for name in sorted(os.listdir(sets)):
        info = os.lstat(os.path.join(sets, name))
        with open(os.path.join(sets, name), 'rb') as handle:
            found[name] = (handle.read(), info.st_ino, info.st_mtime_ns, info.st_mode & 0o7777)
    return found


@pytest.fixture
def store(tmp_path):
    path = tmp_path / 'store'
    path.mkdir(mode=0o700)
    return path


def test_write_rerun_check_diff_list_info_and_prune(store):
    # Check mode on a store without sets/: says what it would write, writes nothing, shows the record as a diff.
    check = run_module('backup_set', present_args(store), check=True, diff=True)
    assert not check['failed'] and check['changed'] and check['written'], check
    assert check['set_id'] == '2026-11-26T083000Z' and check['diff']['before'] == ''
    assert json.loads(check['diff']['after']) == check['record']
    assert not os.path.exists(str(store / 'sets'))

    first = run_module('backup_set', present_args(store), diff=True)
    assert not first['failed'] and first['changed'] and first['written'] and first['latest_written'], first
    files = set_files(store)
    assert sorted(files) == ['2026-11-26T083000Z.json', 'latest.json']
    assert all(mode == 0o600 for _data, _ino, _mtime, mode in files.values())
    record = json.loads(files['latest.json'][0].decode())
    assert record == first['record'] and list(record)[-1] == 'complete' and record['complete'] is True
    assert record['format_version'] == 2 and record['database']['sha256'] == SHA['dump']
    assert 'changed' not in record['database']
    # AnsibleModule must not have replaced the result's fields with a stat() of `path`.
    assert first['path'] == str(store / 'sets' / '2026-11-26T083000Z.json') and 'mode' not in first

    # The same facts again: nothing written, not even renamed over (inode and mtime as they were).
    again = run_module('backup_set', present_args(store), diff=True)
    assert not again['failed'] and not again['changed'] and not again['written'], again
    assert set_files(store) == files

    # A second set; list is newest first, info latest reads it.
    run_module('backup_set', present_args(store, '2026-11-27T08:30:00Z'))
    listed = run_module('backup_set_info', dict(store_path=str(store)))
    assert [entry['set_id'] for entry in listed['sets']] == ['2026-11-27T083000Z', '2026-11-26T083000Z']
    assert listed['latest'] == '2026-11-27T083000Z' and listed['complete_sets'] == [entry['set_id'] for entry in listed['sets']]
    latest = run_module('backup_set_info', dict(set_id='latest', store_path=str(store)))
    assert not latest['failed'] and latest['set_id'] == '2026-11-27T083000Z' and latest['complete'], latest
    # run_module's !unsafe YAML turns the quoted time into a datetime (ansible-core 2.19), rendered +00:00.
    assert latest['record']['datadir']['increment_time'].startswith('2026-11-27T08:30:00')
    by_id = run_module('backup_set_info', dict(store_path=str(store), set_id='2026-11-26T083000Z'))
    assert by_id['record'] == record and not by_id['changed']

    # Prune: check mode first (nothing removed), then for real; the newest complete set stays.
    would = run_module('backup_set', dict(state='pruned', store_path=str(store), keep=1), check=True)
    assert would['changed'] and would['pruned'] == ['2026-11-26T083000Z'], would
    assert os.path.exists(str(store / 'sets' / '2026-11-26T083000Z.json'))
    pruned = run_module('backup_set', dict(state='pruned', store_path=str(store), keep=1, keep_younger_than='1m'))
    assert pruned['changed'] and pruned['pruned'] == ['2026-11-26T083000Z'], pruned
    assert sorted(os.listdir(str(store / 'sets'))) == ['2026-11-27T083000Z.json', 'latest.json']
    assert not run_module('backup_set', dict(state='pruned', store_path=str(store), keep=1))['changed']


def test_missing_incomplete_and_odd_sets_fail_clearly(store):
    missing = run_module('backup_set_info', dict(store_path=str(store), set_id='2026-01-01T000000Z'))
    assert missing['failed'] and 'no backup set 2026-01-01T000000Z' in missing['msg'], missing
    odd = run_module('backup_set_info', dict(store_path=str(store), set_id='../../etc/passwd'))
    assert odd['failed'] and 'is not one' in odd['msg'], odd
    relative = run_module('backup_set_info', dict(store_path='store'))
    assert relative['failed'] and 'store_path must be an absolute path' in relative['msg'], relative

    incomplete = present_args(store)
    incomplete['database'] = dict(incomplete['database'], sha256=None)
    refused = run_module('backup_set', incomplete)
    assert refused['failed'] and 'not complete: database.sha256 is missing' in refused['msg'], refused
    assert not os.path.exists(str(store / 'sets'))
    typo = present_args(store)
    typo['database'] = dict(typo['database'], sha265=SHA['dump'])
    refused = run_module('backup_set', typo)
    assert refused['failed'] and 'database.sha265 is not a field of the set record' in refused['msg'], refused


def test_records_others_could_have_written_are_refused_and_never_written_through(tmp_path, store):
    """Refused on read: a record file that is a symlink (whoever controls its target decides what is restored), one
    owned by another user than root (or the module's user), one its group or others can write, and a sets/
    directory with the same faults. A root-owned 0644 record is read: it holds no secret, and only writing matters.
    A write replaces whatever lies at the record's name (rename), never writes through a link."""
    assert run_module('backup_set', present_args(store))['changed']
    sets = store / 'sets'
    record_file = sets / '2026-11-26T083000Z.json'
    good = record_file.read_bytes()
    elsewhere = tmp_path / 'elsewhere.json'
    elsewhere.write_bytes(good)

    planted = sets / 'planted.json'
    os.symlink(str(elsewhere), str(planted))
    result = run_module('backup_set_info', dict(store_path=str(store), set_id='planted'))
    assert result['failed'] and 'is a symlink' in result['msg'], result
    os.unlink(str(planted))

    planted.write_bytes(good.replace(b'2026-11-26T083000Z', b'planted'))
    os.chmod(str(planted), 0o644)
    assert run_module('backup_set_info', dict(store_path=str(store), set_id='planted'))['complete']
    os.chmod(str(planted), 0o646)
    result = run_module('backup_set_info', dict(store_path=str(store), set_id='planted'))
    assert result['failed'] and 'writable by its group or by others (mode 0646)' in result['msg'], result
    os.chmod(str(planted), 0o600)
    nobody = pwd.getpwnam('nobody').pw_uid
    os.chown(str(planted), nobody, -1)
    result = run_module('backup_set_info', dict(store_path=str(store), set_id='planted'))
    assert result['failed'] and 'owned by uid %d' % nobody in result['msg'], result
    # list reports it, prune keeps it.
    listed = {entry['set_id']: entry for entry in run_module('backup_set_info', dict(store_path=str(store)))['sets']}
    assert not listed['planted']['complete'] and 'owned by uid' in listed['planted']['problems'][0]
    pruned = run_module('backup_set', dict(state='pruned', store_path=str(store), keep=1))
    assert pruned['pruned'] == [] and os.path.exists(str(planted))

    # The set's own name made a symlink to a file of nobody's: the write replaces the link, the target is untouched.
    os.unlink(str(record_file))
    target = tmp_path / 'nobodys.json'
    target.write_bytes(b'nobody')
    subprocess.run(['chown', 'nobody', str(target)], check=True)
    os.symlink(str(target), str(record_file))
    rewritten = run_module('backup_set', present_args(store, changed=False))
    assert rewritten['changed'] and rewritten['written'], rewritten
    assert target.read_bytes() == b'nobody' and not os.path.islink(str(record_file)) and record_file.read_bytes() == good

    os.chmod(str(sets), 0o757)
    result = run_module('backup_set', present_args(store))
    assert result['failed'] and 'refusing the set directory' in result['msg'], result
    os.chmod(str(sets), 0o700)


def test_the_listing_says_which_sets_are_complete_and_reads_no_set_unless_asked(store):
    empty = run_module('backup_set_info', dict(store_path=str(store)))
    assert (empty['sets'], empty['latest'], empty['complete_sets'], empty['ignored']) == ([], None, [], []), empty
    run_module('backup_set', present_args(store))
    listed = run_module('backup_set_info', dict(store_path=str(store)))
    assert 'record' not in listed and listed['complete_sets'] == ['2026-11-26T083000Z'], listed
    empty = run_module('backup_set_info', dict(store_path=str(store / 'nothing-here'), set_id='latest'))
    assert empty['failed'] and 'no backup set latest' in empty['msg'], empty
    lenient = run_module('backup_set_info', dict(store_path=str(store / 'nothing-here'), set_id='latest', require_complete=False))
    assert not lenient['failed'] and not lenient['found'] and lenient['record'] is None, lenient


def test_the_backup_role_writes_a_set_once_and_repairs_a_stale_latest(sandbox_factory, tmp_path):
    """The role passes facts, backup_set writes the version-2 record; a re-run that redid nothing writes nothing. A run
    killed between the set file's rename and latest.json's left latest.json naming an older set: the next run that
    redid nothing points it at the newer set (at 590aa7d it stayed stale for good)."""
    description = sandbox_factory(objects=6, orphans=0, seed=6)
    demo = open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')).read()
    play = tmp_path / 'backup.yml'
    play.write_text(demo[:demo.index('  tasks:\n')] + '    omero_backup_skip_if_newer_than: 1h\n  tasks:\n'
                    '    - name: Run backup\n      ansible.builtin.include_role:\n        name: omero.backup.backup\n')
    first = run_playbook(str(play), extra_vars={'omero_demo_sandbox': description})
    assert first['rc'] == 0, first['stdout'][-6000:]
    writes = module_results(first, 'omero.backup.backup_set')
    assert len(writes) == 1 and writes[0]['changed'] and writes[0]['written'], writes
    store = os.path.join(description['root'], 'store')
    record = writes[0]['record']
    assert record['format_version'] == 2 and record['complete'] and record['set_id'] == writes[0]['set_id']
    files = set_files(store)

    again = run_playbook(str(play), extra_vars={'omero_demo_sandbox': description})
    assert again['rc'] == 0, again['stdout'][-6000:]
    assert [result['changed'] for result in module_results(again, 'omero.backup.backup_set')] == [False]
    assert set_files(store) == files

    sets = os.path.join(store, 'sets')
    older = dict(record, set_id='2020-01-01T000000Z')
    older['datadir'] = dict(record['datadir'], increment_epoch=1577836800, increment_time='2020-01-01T00:00:00Z')
    for name in ('2020-01-01T000000Z.json', 'latest.json'):
        with open(os.path.join(sets, name), 'w') as handle:
            json.dump(older, handle)
    repaired = run_playbook(str(play), extra_vars={'omero_demo_sandbox': description})
    assert repaired['rc'] == 0, repaired['stdout'][-6000:]
    outcome = module_results(repaired, 'omero.backup.backup_set')[0]
    assert outcome['changed'] and not outcome['written'] and outcome['latest_written'], outcome
    with open(os.path.join(sets, 'latest.json')) as handle:
        assert json.load(handle)['set_id'] == record['set_id']
