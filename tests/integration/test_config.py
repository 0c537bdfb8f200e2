# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.config_save / config_load through the real ansible CLI and the real `omero` CLI.

Each test works on a private copy of the session sandbox's OMERODIR `etc/` (its config.xml was written by
the real CLI and holds the sandbox database password) and of its role-managed config directory.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import fcntl
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from helpers.ansible import run_module

GENERATED = re.compile(br'generated at [^\n]* by')


def _make_site(sandbox):
    top = tempfile.mkdtemp(prefix='omero-config-it-')
    os.chmod(top, 0o755)  # omero runs as omero-server and must reach OMERODIR
    user = sandbox['omero_user']
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    omerodir = os.path.join(top, 'OMERO.server')
    config_dir = os.path.join(top, 'config')
    shutil.copytree(os.path.join(sandbox['omerodir'], 'etc'), os.path.join(omerodir, 'etc'))
    shutil.copytree(sandbox['config_dir'], config_dir)
    for tree in (omerodir, config_dir):
        for root, dirs, files in os.walk(tree):
            for name in [root] + [os.path.join(root, entry) for entry in files]:
                os.chown(name, uid, gid)
    backup = os.path.join(top, 'backup')
    return {'top': top, 'omerodir': omerodir, 'config_dir': config_dir, 'backup': backup,
            # The sandbox's bin/omero link lives under pytest's 0700 base directory; omero-server needs the real path.
            'dest': os.path.join(backup, 'omero.config'), 'omero_command': os.path.realpath(sandbox['omero_command']), 'user': user,
            'password': sandbox['postgres']['owner_password']}


@pytest.fixture(scope='module')
def saved(sandbox):
    """One config_save run of the sandbox's config: (site it was taken from, profile text before, module result).

    Every copy of the sandbox's etc/ holds the same profile, so tests start from copies of this backup.
    """
    site = _make_site(sandbox)
    before = get_all(site)
    result = save(site)
    yield site, before, result
    shutil.rmtree(site['top'], ignore_errors=True)


@pytest.fixture
def site(sandbox, saved):
    """A private OMERODIR copy with the backup already beside it (dest, dest.xml, dest.manifest.json)."""
    site = _make_site(sandbox)
    shutil.copytree(saved[0]['backup'], site['backup'])
    yield site
    shutil.rmtree(site['top'], ignore_errors=True)


def omero(site, *args, **kwargs):
    """The real CLI as the OMERO system user; returns stdout."""
    env = dict(os.environ, OMERODIR=site['omerodir'], HOME='/tmp')
    proc = subprocess.run(['runuser', '-u', site['user'], '--', site['omero_command']] + list(args), env=env,
                          input=kwargs.get('stdin'), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def get_all(site):
    return omero(site, 'config', 'get', '--show-password')


def config_xml(site):
    with open(os.path.join(site['omerodir'], 'etc', 'grid', 'config.xml'), 'rb') as handle:
        return GENERATED.sub(b'generated at TIME by', handle.read())


def cli_args(site, **extra):
    args = {'omerodir': site['omerodir'], 'omero_command': site['omero_command'], 'user': site['user']}
    args.update(extra)
    return args


def save(site, **kwargs):
    check, diff = kwargs.pop('check', False), kwargs.pop('diff', False)
    kwargs.setdefault('dest', site['dest'])
    return run_module('config_save', cli_args(site, **kwargs), check=check, diff=diff)


def load(site, **kwargs):
    check, diff = kwargs.pop('check', False), kwargs.pop('diff', False)
    kwargs.setdefault('src', site['dest'])
    return run_module('config_load', cli_args(site, **kwargs), check=check, diff=diff)


def no_secret(site, result):
    assert site['password'] not in json.dumps(result)


def script(site, text):
    """Several CLI commands in one `omero load` process (each CLI start costs seconds)."""
    return omero(site, 'load', stdin=text)


def test_round_trip_save_wipe_load_gives_back_the_same_config(saved, site):
    origin, before, result = saved
    assert 'omero.db.pass=%s\n' % site['password'] in before
    assert not result['failed'], result['msg']
    assert result['changed'] and result['key_count'] == len(before.splitlines())
    no_secret(site, result)
    for path in (origin['dest'], origin['dest'] + '.xml', origin['dest'] + '.manifest.json'):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(origin['dest']) as handle:
        assert handle.read() == before
    manifest = json.load(open(origin['dest'] + '.manifest.json'))
    assert manifest['complete'] is True and manifest['omero_py_version'] == result['omero_py_version']
    assert manifest['key_count'] == result['key_count']
    assert save(site)['changed'] is False

    omero(site, 'config', 'drop', 'default')
    loaded = load(site, mode='replace')
    assert not loaded['failed'], loaded['msg']
    assert loaded['changed'] and loaded['keys_added'] == sorted(line.split('=')[0] for line in before.splitlines())
    no_secret(site, loaded)
    assert get_all(site) == before
    again = load(site, mode='replace')
    assert not again['failed'] and again['changed'] is False


def test_masked_file_is_refused_and_nothing_changes(site):
    masked = omero(site, 'config', 'get')
    assert 'omero.db.pass=********' in masked
    with open(site['dest'], 'w') as handle:
        handle.write(masked)
    before = config_xml(site)
    result = load(site, force=True)
    assert result['failed'] and 'masked' in result['msg'] and 'omero.db.pass' in result['msg']
    assert config_xml(site) == before


def test_merge_conflict_names_the_key_not_the_secret_and_leaves_config_untouched(site):
    omero(site, 'config', 'set', 'omero.db.pass', 'changed-secret')
    before = config_xml(site)
    result = load(site, mode='merge')
    assert result['failed'] and 'omero.db.pass' in result['msg'] and 'nothing was written' in result['msg']
    assert 'changed-secret' not in json.dumps(result)
    no_secret(site, result)
    assert config_xml(site) == before


def test_merge_adds_missing_keys_and_replace_removes_extra_keys(saved, site):
    original = saved[1]
    script(site, 'config set -- omero.db.poolsize\nconfig set -- omero.extra.key "extra value"\n')
    merged = load(site, mode='merge')
    assert not merged['failed'], merged['msg']
    assert merged['changed'] and merged['keys_added'] == ['omero.db.poolsize'] and merged['keys_removed'] == []
    assert 'omero.extra.key=extra value' in get_all(site)
    replaced = load(site, mode='replace')
    assert replaced['changed'] and replaced['keys_removed'] == ['omero.extra.key'] and replaced['keys_added'] == []
    assert get_all(site) == original


def test_check_and_diff_modes_change_nothing_and_mask_secrets(site):
    dest = os.path.join(site['backup'], 'check', 'omero.config')
    checked = save(site, dest=dest, check=True, diff=True)
    assert not checked['failed'] and checked['changed'] and not os.path.exists(os.path.dirname(dest))
    assert 'omero.db.pass=********\n' in checked['diff']['after']
    no_secret(site, checked)

    script(site, 'config set -- omero.db.pass other-secret\nconfig set -- omero.extra.key x\n')
    before = config_xml(site)
    result = load(site, mode='replace', check=True, diff=True)
    assert not result['failed'] and result['changed']
    assert result['keys_changed'] == ['omero.db.pass'] and result['keys_removed'] == ['omero.extra.key']
    assert 'omero.db.pass=********\n' in result['diff']['before']
    assert 'omero.db.pass=******** (changed)\n' in result['diff']['after']
    assert 'other-secret' not in json.dumps(result)
    no_secret(site, result)
    assert config_xml(site) == before


def test_version_mismatch_is_refused_unless_forced(site):
    manifest_path = site['dest'] + '.manifest.json'
    manifest = json.load(open(manifest_path))
    manifest['omero_py_version'] = '5.0.0'
    with open(manifest_path, 'w') as handle:
        json.dump(manifest, handle)
    omero(site, 'config', 'set', 'omero.extra.key', 'x')
    before = config_xml(site)
    refused = load(site, mode='replace')
    assert refused['failed'] and 'different OMERO version' in refused['msg'] and '5.0.0' in refused['msg']
    assert config_xml(site) == before
    forced = load(site, mode='replace', force=True)
    assert not forced['failed'] and forced['keys_removed'] == ['omero.extra.key']


def test_unreadable_file_and_missing_omerodir_are_clear_errors(site):
    os.chmod(site['backup'], 0o700)  # root's, so the omero-server user cannot read the saved file
    result = run_module('config_load', cli_args(site, src=site['dest']), become_user=site['user'])
    assert result['failed'] and 'cannot read saved config' in result['msg'] and 'Permission denied' in result['msg']

    gone = os.path.join(site['omerodir'], 'gone')
    missing = load(site, omerodir=gone)
    assert missing['failed'] and 'OMERODIR %s does not exist' % gone in missing['msg']
    missing = save(site, omerodir=gone, dest=site['dest'] + '2')
    assert missing['failed'] and 'does not exist' in missing['msg'] and not os.path.exists(site['dest'] + '2')


def test_concurrent_config_writer_gives_config_is_locked(site):
    omero(site, 'config', 'set', 'omero.extra.key', 'x')
    lock_path = os.path.join(site['omerodir'], 'etc', 'grid', 'config.xml.lock')
    user = pwd.getpwnam(site['user'])
    # Hold the lock the way omero-py does (flock on config.xml.lock), as a writer owned by the OMERO user would.
    with open(lock_path, 'a+') as lock:
        os.chown(lock_path, user.pw_uid, user.pw_gid)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = config_xml(site)
        result = load(site, mode='replace')
        assert config_xml(site) == before
    os.unlink(lock_path)
    assert result['failed'] and 'config is locked' in result['msg']
    assert 'Traceback' not in result['msg']


def test_managed_config_dir_survives_the_roles_reload(saved, site):
    original = saved[1]
    omero(site, 'config', 'drop', 'default')
    result = load(site, mode='replace', managed_config_dir=site['config_dir'])
    assert not result['failed'], result['msg']
    path = os.path.join(site['config_dir'], '99-omero-backup-restored.omero')
    assert result['managed_config'] == {'path': path, 'changed': True}
    assert path in result['msg']
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
    assert st.st_gid == pwd.getpwnam(site['user']).pw_gid
    with open(path) as handle:
        assert 'config set -- omero.db.pass %s\n' % site['password'] in handle.read()

    # What ome.omero_server does at every start (with omero_server_always_reset_config): drop the profile, then
    # `omero load` each *.omero file in name order; here in one process.
    reload_script = 'config drop default\n'
    for name in sorted(os.listdir(site['config_dir'])):
        if name.endswith('.omero'):
            with open(os.path.join(site['config_dir'], name)) as handle:
                reload_script += handle.read()
    script(site, reload_script)
    assert get_all(site) == original

    again = load(site, mode='replace', managed_config_dir=site['config_dir'])
    assert not again['failed'] and again['changed'] is False and again['managed_config']['changed'] is False


def test_load_into_a_reinstalled_server_without_config_xml(site):
    """The state after a disaster: OMERO.server installed again, its etc/grid/ present, config.xml not yet written."""
    grid = os.path.join(site['omerodir'], 'etc', 'grid')
    os.unlink(os.path.join(grid, 'config.xml'))
    left = sorted(os.listdir(grid))
    with open(site['dest']) as handle:
        saved_text = handle.read()

    checked = load(site, mode='replace', check=True, diff=True)
    assert not checked['failed'], checked['msg']
    assert checked['changed'] and checked['keys_added'] == sorted(line.split('=')[0] for line in saved_text.splitlines())
    assert checked['keys_removed'] == [] and checked['keys_changed'] == []
    assert checked['diff']['before'] == '' and 'omero.db.pass=********\n' in checked['diff']['after']
    no_secret(site, checked)
    assert sorted(os.listdir(grid)) == left

    loaded = load(site, mode='replace', diff=True)
    assert not loaded['failed'], loaded['msg']
    assert loaded['changed'] and loaded['keys_added'] == checked['keys_added']
    no_secret(site, loaded)
    assert os.stat(os.path.join(grid, 'config.xml')).st_uid == pwd.getpwnam(site['user']).pw_uid
    assert get_all(site) == saved_text
    again = load(site, mode='replace')
    assert not again['failed'] and again['changed'] is False
