# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles on the restic engine, on one host with a real sandbox and a local restic repository: the whole story of
playbooks/demo.yml (backup, disaster, restore, verify) with omero_backup_datadir_engine=restic, then a second backup
whose retention keeps the last snapshot only (the first set's record is pruned with its snapshot), then a drill of
the restic set. The originals come back (config with its passwords, database rows, data-dir files), the set rides in
one snapshot (nothing of the config or the dump in clear on the store), and the records name the snapshot."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import os
import pwd
import subprocess
import time

from helpers.ansible import REPO_ROOT, module_results, run_playbook
from helpers.sandbox import query

NOT_BACKED_UP = ('BioFormatsCache/',)  # excluded by design (regenerable)
PASSWORD = 'restic-roles-test-repository-password'


def table_checksums(description):
    tables = [row[0] for row in query(description, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return dict((table, query(description, 'SELECT count(*), md5(string_agg(t::text, \'|\' ORDER BY t::text)) FROM public."%s" t'
                              % table)[0]) for table in tables)


def file_checksums(datadir, relpaths):
    sums = {}
    for relpath in relpaths:
        full = os.path.join(datadir, relpath)
        if os.path.islink(full):
            sums[relpath] = 'link:' + os.readlink(full)
        elif os.path.isfile(full):
            with open(full, 'rb') as handle:
                sums[relpath] = hashlib.sha256(handle.read()).hexdigest()
        else:
            sums[relpath] = None
    return sums


def config_text(description):
    """What omero config get --show-password prints (config.xml itself carries a version counter a load bumps)."""
    env = dict(os.environ, OMERODIR=description['omerodir'], HOME=pwd.getpwnam(description['omero_user']).pw_dir)
    proc = subprocess.run(['runuser', '-u', description['omero_user'], '--', description['omero_command'], 'config', 'get',
                           '--show-password'], env=env, cwd=description['omerodir'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def records(root):
    sets = os.path.join(root, 'store', 'sets')
    return sorted(name for name in os.listdir(sets) if name != 'latest.json' and not name.startswith('.'))


def snapshots(root, password_file):
    proc = subprocess.run(['restic', '--no-cache', '--json', '-r', os.path.join(root, 'store', 'restic'), 'snapshots'],
                          env=dict(os.environ, RESTIC_PASSWORD_FILE=password_file), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def store_holds(root, needle):
    """Files of the store whose bytes hold ``needle``."""
    found = []
    for base, _dirs, files in os.walk(os.path.join(root, 'store')):
        for name in files:
            with open(os.path.join(base, name), 'rb') as handle:
                if needle in handle.read():
                    found.append(os.path.join(base, name))
    return found


def play_of_demo(tmp_path, name, tasks):
    """playbooks/demo.yml's play header (its variables) with other tasks."""
    demo = open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')).read()
    path = tmp_path / name
    path.write_text(demo[:demo.index('  tasks:\n')] + '    omero_drill_root: "{{ omero_demo_root }}/drill"\n  tasks:\n' + tasks)
    return str(path)


def test_restic_story_retention_and_drill(sandbox_factory, tmp_path):
    started = time.time()
    description = sandbox_factory(objects=12, orphans=2, seed=23)
    root = description['root']
    relpaths = [p for p in description['checksums'] if not p.startswith(NOT_BACKED_UP) and not p.endswith('/.lock')]
    before = {'config': config_text(description), 'tables': table_checksums(description),
              'files': file_checksums(description['datadir'], relpaths)}
    password_file = os.path.join(root, 'secrets', 'restic-password')
    extra = {'omero_demo_sandbox': description, 'omero_backup_datadir_engine': 'restic',
             'omero_backup_restic_password': PASSWORD, 'omero_backup_restic_password_file': password_file,
             'omero_backup_restic_verify_read_data': 'all'}

    # 1. The whole story on restic.
    result = run_playbook(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml'), extra_vars=extra)
    story = time.time()
    assert result['rc'] == 0, result['stdout'][-6000:]
    backup = module_results(result, 'omero.backup.datadir_backup')[-1]
    assert backup['snapshot_id'] and backup['repository_initialized'] is True
    assert backup['verify']['ok'] is True
    verdict = module_results(result, 'omero.backup.verify')[-1]
    assert verdict['ok'] and verdict['db_uuid'] == description['db_uuid']
    assert config_text(description) == before['config']
    assert table_checksums(description) == before['tables']
    assert file_checksums(description['datadir'], relpaths) == before['files']

    first = json.load(open(os.path.join(root, 'store', 'sets', 'latest.json')))
    assert first['complete'] is True
    assert first['datadir']['engine'] == 'restic' and first['datadir']['snapshot_id'] == backup['snapshot_id']
    assert first['datadir']['label'] == first['set_id']
    assert first['datadir']['repository'] == os.path.join(root, 'store', 'restic')
    snaps = snapshots(root, password_file)
    assert [snap['id'] for snap in snaps] == [backup['snapshot_id']]
    assert first['set_id'] in snaps[0]['tags']
    # The dump and the config rode in the snapshot: the store holds no copy of them in clear.
    assert not os.path.exists(os.path.join(root, 'store', 'datadir'))
    assert store_holds(root, description['postgres']['owner_password'].encode()) == []
    assert oct(os.stat(password_file).st_mode & 0o777) == '0o600'
    assert os.listdir(os.path.join(root, 'staging')) == []  # the backup's and the restore's staging removed
    assert PASSWORD not in result['stdout'] and description['postgres']['owner_password'] not in result['stdout']

    # 2. A second backup keeping the last snapshot only, then a drill of its set.
    time.sleep(1)  # set ids are UTC seconds
    tasks = ('    - name: Back up\n      ansible.builtin.include_role:\n        name: omero.backup.backup\n'
             '      vars:\n        omero_backup_restic_keep_within: ""\n        omero_backup_restic_keep_last: 1\n'
             '    - name: Drill\n      ansible.builtin.include_role:\n        name: omero.backup.maintenance\n'
             '        tasks_from: drill\n')
    result = run_playbook(play_of_demo(tmp_path, 'again.yml', tasks), extra_vars=extra)
    assert result['rc'] == 0, result['stdout'][-6000:]
    second = json.load(open(os.path.join(root, 'store', 'sets', 'latest.json')))
    assert second['set_id'] != first['set_id']
    assert records(root) == [second['set_id'] + '.json']
    assert [snap['id'] for snap in snapshots(root, password_file)] == [second['datadir']['snapshot_id']]
    drill = json.load(open(os.path.join(root, 'status', 'status.json')))['jobs']['drill']['last_success']
    assert drill['details']['set_id'] == second['set_id'] and drill['details']['engine'] == 'restic'
    assert not os.path.exists(os.path.join(root, 'drill'))
    assert table_checksums(description) == before['tables']
    print('restic roles: story %.1f s, second backup + drill %.1f s' % (story - started, time.time() - story))
