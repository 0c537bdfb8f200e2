# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore staging against a hostile local user (the real `nobody`), on one real localhost sandbox (issue 12, item 1).

* The old fixed staging path (/var/tmp/omero-restore) pre-created by nobody, with a process of nobody's that swaps
  its own dump and a matching manifest (complete, its own sha256) in as soon as the restore's copies land there: the
  restore never stages there, and no table of the attacker's dump reaches the restored database.
* A symlink (or a directory of nobody's) planted where the staging parent should be: the restore refuses before
  anything is staged or restored, and writes nothing through the link.
* With the staging parent fine, a dump that is not the one the store's set record names (the record read from the
  store the operator chose) is refused by db_restore, whatever manifest lies beside it; the database is untouched.

The plays use playbooks/demo.yml's variables without any staging variable, so the roles' default staging applies.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

import omero_sandbox
from helpers.ansible import REPO_ROOT, failed_results, module_results, run_playbook
from helpers.sandbox import drop_database_and_owner, psycopg2_connect, query

OLD_FIXED_STAGING = '/var/tmp/omero-restore'
ATTACKER_TABLE = 'attacker_was_here'

# Runs as nobody: whenever a file of the restore lands in nobody's directory under the old fixed staging path, it
# is replaced (rename over it) by nobody's own dump or manifest, until the test kills it.
SWAPPER = r'''
import os, sys, time
watch, evil_dir = sys.argv[1], sys.argv[2]
names = os.listdir(evil_dir)
sys.stdout.write('watching\n')
sys.stdout.flush()
while True:
    for name in names:
        target = os.path.join(watch, name)
        try:
            if os.lstat(target).st_uid != os.getuid():
                tmp = os.path.join(watch, '.swap-' + name)
                with open(os.path.join(evil_dir, name), 'rb') as src, open(tmp, 'wb') as dst:
                    dst.write(src.read())
                os.rename(tmp, target)
        except OSError:
            pass
    time.sleep(0.002)
'''


def staging_free_play(path, tasks):
    """playbooks/demo.yml's play header without any staging variable, with other tasks."""
    demo = open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')).read()
    header = ''.join(line for line in demo[:demo.index('  tasks:\n')].splitlines(True) if 'staging' not in line)
    path.write_text(header + '  tasks:\n' + tasks)
    return str(path)


RESTORE_TASK = '    - name: Run restore\n      ansible.builtin.include_role:\n        name: omero.backup.restore\n'
BACKUP_TASK = '    - name: Run backup\n      ansible.builtin.include_role:\n        name: omero.backup.backup\n'


def failed_messages(result):
    return [outcome.get('msg', '') for outcome in failed_results(result)]


def ran(result, action, argv0=None):
    """Whether a step that runs module `action` (for a command: the tool `argv0`) ran (tests key on results)."""
    return any(not outcome.get('skipped') and (argv0 is None or (outcome.get('cmd') or [None])[0] == argv0)
               for outcome in module_results(result, action))


def as_nobody_mkdir(path, mode=0o755):
    nobody = pwd.getpwnam('nobody')
    os.mkdir(path)
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    os.chmod(path, mode)


def autocommit(description, sql):
    conn = psycopg2_connect(description, dbname='postgres')
    try:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def attacker_dump(description, workdir, dump_name):
    """nobody's files: a custom-format dump of a database holding ATTACKER_TABLE, named as the set's dump, and a
    manifest beside it in db_dump's format that says complete and carries that dump's own size and sha256."""
    postgres = description['postgres']
    evil_db = 'attacker_source'
    autocommit(description, 'DROP DATABASE IF EXISTS %s' % evil_db)
    autocommit(description, 'CREATE DATABASE %s' % evil_db)
    query(description, 'CREATE TABLE public.%s (id int)' % ATTACKER_TABLE, dbname=evil_db)
    dump = os.path.join(workdir, dump_name)
    subprocess.run([os.path.join(postgres['bindir'], 'pg_dump'), '-Fc', '-h', postgres['host'], '-p', str(postgres['port']),
                    '-U', postgres['superuser'], '-f', dump, evil_db], check=True)
    autocommit(description, 'DROP DATABASE %s' % evil_db)
    with open(dump, 'rb') as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    size = os.path.getsize(dump)
    real_manifest = os.path.join(description['datadir'], 'backup', 'database', dump_name + '.manifest.json')
    with open(real_manifest) as handle:
        record = json.load(handle)
    record.update(sha256=digest, size=size, complete=True)
    record['files'] = [{'path': dump_name, 'size': size, 'sha256': digest}]
    with open(dump + '.manifest.json', 'w') as handle:
        json.dump(record, handle)
    return dump


@pytest.fixture(scope='module')
def backed_up(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('staging-sandbox'))
    description = omero_sandbox.build(root, objects=12, orphans=1, seed=12)
    plays = tmp_path_factory.mktemp('staging-plays')
    backup = run_playbook(staging_free_play(plays / 'backup.yml', BACKUP_TASK), extra_vars={'omero_demo_sandbox': description})
    assert backup['rc'] == 0, backup['stdout'][-6000:]
    # The set record names the dump's sha256 (what a restore trusts), and it is the dump's.
    record = latest_set(description)['database']
    with open(os.path.join(description['datadir'], 'backup', 'database', os.path.basename(record['path'])), 'rb') as handle:
        assert record['sha256'] == hashlib.sha256(handle.read()).hexdigest()
    yield description, plays
    if os.environ.get('OMERO_SANDBOX_KEEP') != '1':
        omero_sandbox.destroy(root)


def latest_set(description):
    with open(os.path.join(description['root'], 'store', 'sets', 'latest.json')) as handle:
        return json.load(handle)


def restored_tables(description):
    return [row[0] for row in query(description, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def test_a_planted_old_staging_dir_and_a_swapping_attacker_get_nothing_restored(backed_up):
    description, plays = backed_up
    dump_name = os.path.basename(latest_set(description)['database']['path'])
    assert not os.path.lexists(OLD_FIXED_STAGING), 'a leftover %s from another run' % OLD_FIXED_STAGING
    evil_dir = tempfile.mkdtemp(prefix='omero-attacker-', dir='/var/tmp')
    swapper = None
    try:
        os.chmod(evil_dir, 0o755)
        attacker_dump(description, evil_dir, dump_name)
        for name in os.listdir(evil_dir):
            os.chmod(os.path.join(evil_dir, name), 0o644)
        as_nobody_mkdir(OLD_FIXED_STAGING)
        as_nobody_mkdir(os.path.join(OLD_FIXED_STAGING, 'database'))
        swapper = subprocess.Popen(['runuser', '-u', 'nobody', '--', '/usr/bin/python3', '-c', SWAPPER,
                                    os.path.join(OLD_FIXED_STAGING, 'database'), evil_dir], stdout=subprocess.PIPE)
        assert swapper.stdout.readline().strip() == b'watching'

        drop_database_and_owner(description)
        result = run_playbook(staging_free_play(plays / 'restore.yml', RESTORE_TASK),
                              extra_vars={'omero_demo_sandbox': description, 'omero_restore_config': False,
                                          'omero_restore_datadir': False, 'omero_restore_verify': False})
        tables = restored_tables(description)
        assert ATTACKER_TABLE not in tables, 'the attacker\'s dump was restored: %s' % tables
        assert result['rc'] == 0, result['stdout'][-6000:]
        assert 'pixels' in tables and 'originalfile' in tables
        db_uuid = query(description, "SELECT value FROM configuration WHERE name = 'omero.db.uuid'")[0][0]
        assert db_uuid == description['db_uuid']
        # Nothing of the run went through nobody's directory.
        assert os.path.isdir(os.path.join(OLD_FIXED_STAGING, 'database'))
        assert os.listdir(os.path.join(OLD_FIXED_STAGING, 'database')) == []
    finally:
        if swapper is not None:
            subprocess.run(['pkill', '-KILL', '-P', str(swapper.pid)], check=False)
            swapper.kill()
            swapper.wait()
        shutil.rmtree(OLD_FIXED_STAGING, ignore_errors=True)
        shutil.rmtree(evil_dir, ignore_errors=True)


@pytest.fixture
def shared_dir():
    """A world-writable sticky directory (as /var/tmp is) that nobody can reach."""
    path = tempfile.mkdtemp(prefix='omero-shared-', dir='/var/tmp')
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize('planted', ['symlink', 'nobodys_dir'])
def test_a_staging_parent_planted_by_another_user_is_refused(backed_up, shared_dir, planted):
    description, plays = backed_up
    parent = os.path.join(shared_dir, 'staging')
    lure = os.path.join(shared_dir, 'lure')
    as_nobody_mkdir(lure, 0o777)
    if planted == 'symlink':
        subprocess.run(['runuser', '-u', 'nobody', '--', 'ln', '-s', lure, parent], check=True)
    else:
        subprocess.run(['runuser', '-u', 'nobody', '--', 'mkdir', '-m', '0700', parent], check=True)
    tables_before = restored_tables(description)

    result = run_playbook(staging_free_play(plays / 'restore-planted.yml', RESTORE_TASK),
                          extra_vars={'omero_demo_sandbox': description, 'omero_backup_staging_parent': parent,
                                      'omero_restore_replace': True})
    assert result['rc'] != 0, result['stdout'][-6000:]
    refusal = [msg for msg in failed_messages(result) if msg.startswith('Refusing the staging parent localhost:%s' % parent)]
    assert refusal, failed_messages(result)
    assert ('a symlink' if planted == 'symlink' else 'owned by nobody') in refusal[0], refusal[0]
    assert not ran(result, 'ansible.builtin.command', 'rdiff-backup')  # the set's backup/ never left the store
    assert not ran(result, 'omero.backup.db_restore')
    assert os.listdir(lure) == []
    assert os.lstat(parent).st_uid == pwd.getpwnam('nobody').pw_uid
    assert restored_tables(description) == tables_before


def test_a_dump_the_set_record_does_not_name_is_refused(backed_up, tmp_path):
    """The store's set record names another sha256 than the dump the store's increment holds (as when the
    staged dump was swapped): db_restore refuses, whatever manifest lies beside the dump."""
    description, plays = backed_up
    sets_dir = os.path.join(description['root'], 'store', 'sets')
    record = latest_set(description)
    set_file = os.path.join(sets_dir, record['set_id'] + '.json')
    with open(set_file, 'rb') as handle:
        original = handle.read()
    tampered = dict(record, set_id='tampered')
    tampered['database'] = dict(record['database'], sha256='0' * 64)
    with open(os.path.join(sets_dir, 'tampered.json'), 'w') as handle:
        json.dump(tampered, handle)
    drop_database_and_owner(description)
    try:
        result = run_playbook(staging_free_play(tmp_path / 'restore-tampered.yml', RESTORE_TASK),
                              extra_vars={'omero_demo_sandbox': description, 'omero_restore_set': 'tampered',
                                          'omero_restore_config': False, 'omero_restore_datadir': False})
        assert result['rc'] != 0, result['stdout'][-6000:]
        database = module_results(result, 'omero.backup.db_restore')
        assert database and database[-1].get('failed'), result['stdout'][-6000:]
        assert '0' * 64 in database[-1]['msg'] or 'sha256' in database[-1]['msg'], database[-1]['msg']
        databases = [row[0] for row in query(description, 'SELECT datname FROM pg_database', dbname='postgres')]
        assert description['postgres']['dbname'] not in databases or restored_tables(description) == []
        with open(set_file, 'rb') as handle:
            assert handle.read() == original
    finally:
        os.unlink(os.path.join(sets_dir, 'tampered.json'))
        # Put the site back for the other tests of this module.
        rerun = run_playbook(staging_free_play(tmp_path / 'restore-back.yml', RESTORE_TASK),
                             extra_vars={'omero_demo_sandbox': description, 'omero_restore_config': False,
                                         'omero_restore_datadir': False, 'omero_restore_replace': True,
                                         'omero_restore_verify': False})
        assert rerun['rc'] == 0, rerun['stdout'][-6000:]


def test_a_backup_removes_the_staging_killed_runs_of_this_host_left_and_no_other_hosts(backed_up):
    """Staging a killed restore or drill left (it holds the config with passwords) is removed by the next backup's
    preflight; another OMERO.server host's staging on a shared store is not this run's to remove."""
    description, plays = backed_up
    parent = '/var/lib/omero-backup/staging'  # the default: the plays set no staging variable
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o700)
    ours = tempfile.mkdtemp(prefix='omero-staging-localhost.', dir=parent)
    theirs = tempfile.mkdtemp(prefix='omero-staging-omero2_example_org.', dir=parent)
    try:
        os.mkdir(os.path.join(ours, 'config'))
        with open(os.path.join(ours, 'config', 'omero.config'), 'w') as handle:
            handle.write('omero.db.pass=%s\n' % description['postgres']['owner_password'])
        result = run_playbook(staging_free_play(plays / 'backup-again.yml', BACKUP_TASK),
                              extra_vars={'omero_demo_sandbox': description})
        assert result['rc'] == 0, result['stdout'][-6000:]
        assert not os.path.lexists(ours)
        assert os.path.isdir(theirs)
    finally:
        shutil.rmtree(ours, ignore_errors=True)
        shutil.rmtree(theirs, ignore_errors=True)


def test_a_config_the_set_record_does_not_name_is_not_loaded(backed_up, tmp_path):
    """The same for the configuration (it holds omero.db.pass): the role compares the staged file's sha256 with
    the set record's before config_load reads it."""
    description, plays = backed_up
    sets_dir = os.path.join(description['root'], 'store', 'sets')
    record = latest_set(description)
    tampered = dict(record, set_id='tampered-config')
    tampered['config'] = dict(record['config'], sha256='0' * 64)
    with open(os.path.join(sets_dir, 'tampered-config.json'), 'w') as handle:
        json.dump(tampered, handle)
    config_xml = os.path.join(description['omerodir'], 'etc', 'grid', 'config.xml')
    with open(config_xml, 'rb') as handle:
        before = handle.read()
    try:
        result = run_playbook(staging_free_play(tmp_path / 'restore-config.yml', RESTORE_TASK),
                              extra_vars={'omero_demo_sandbox': description, 'omero_restore_set': 'tampered-config',
                                          'omero_restore_database': False, 'omero_restore_datadir': False,
                                          'omero_restore_replace': True, 'omero_restore_verify': False})
    finally:
        os.unlink(os.path.join(sets_dir, 'tampered-config.json'))
    assert result['rc'] != 0, result['stdout'][-6000:]
    refusal = [msg for msg in failed_messages(result) if msg.startswith('Nothing loaded: ')]
    assert refusal and '0' * 64 in refusal[0], failed_messages(result)
    assert not ran(result, 'omero.backup.config_load')
    with open(config_xml, 'rb') as handle:
        assert handle.read() == before
