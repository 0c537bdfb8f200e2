# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup and restore roles end to end on one host (every group is localhost), on a real sandbox:
playbooks/demo.yml backs up, drops the database and its owner, wipes the data dir and the config, restores
and verifies; the test then checks config (passwords included), database rows and data-dir files equal the
originals, and that the store, the status file and the metrics say what happened."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import os
import pwd
import subprocess

from helpers.ansible import REPO_ROOT, module_results, run_playbook
from helpers.sandbox import query

NOT_BACKED_UP = ('BioFormatsCache/',)  # excluded by design (regenerable)


def config_dump(description):
    env = dict(os.environ, OMERODIR=description['omerodir'], HOME=pwd.getpwnam(description['omero_user']).pw_dir)
    proc = subprocess.run(['runuser', '-u', description['omero_user'], '--', description['omero_command'], 'config', 'get',
                           '--show-password'], env=env, cwd=description['omerodir'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def table_checksums(description):
    tables = [row[0] for row in query(description, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    sums = {}
    for table in tables:
        sums[table] = query(description, 'SELECT count(*), md5(string_agg(t::text, \'|\' ORDER BY t::text)) FROM public."%s" t'
                            % table)[0]
    return sums


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


def test_backup_disaster_restore_gives_back_the_originals(sandbox_factory, tmp_path):
    description = sandbox_factory(objects=30, orphans=2, seed=21)
    relpaths = [p for p in description['checksums'] if not p.startswith(NOT_BACKED_UP) and not p.endswith('/.lock')]
    before = {'config': config_dump(description), 'tables': table_checksums(description),
              'files': file_checksums(description['datadir'], relpaths)}
    assert 'omero.db.pass=%s' % description['postgres']['owner_password'] in before['config']

    result = run_playbook(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml'), extra_vars={'omero_demo_sandbox': description})
    assert result['rc'] == 0, result['stdout'][-6000:]

    verdict = module_results(result, 'omero.backup.verify')[-1]
    assert verdict['ok'] and verdict['db_uuid'] == description['db_uuid']
    assert config_dump(description) == before['config']
    assert table_checksums(description) == before['tables']
    assert file_checksums(description['datadir'], relpaths) == before['files']

    root = description['root']
    latest = json.load(open(os.path.join(root, 'store', 'sets', 'latest.json')))
    assert list(latest)[-1] == 'complete' and latest['complete'] is True
    assert latest['database']['db_uuid'] == description['db_uuid']
    assert oct(os.stat(os.path.join(root, 'store', 'sets', 'latest.json')).st_mode & 0o777) == '0o600'
    status = json.load(open(os.path.join(root, 'status', 'status.json')))
    assert status['jobs']['backup']['last_success']['set_id'] == latest['set_id']
    metrics = open(os.path.join(root, 'status', 'omero_backup.prom')).read()
    assert 'omero_backup_last_run_success{job="backup"} 1' in metrics
    assert os.listdir(os.path.join(root, 'staging')) == []  # this run's staging removed, the private parent kept
    # passwords never in the play's output
    assert description['postgres']['owner_password'] not in result['stdout']
    assert description['postgres']['superuser_password'] not in result['stdout']

    # A drill of the same set restores into scratch locations, leaves production alone and cleans up.
    drill_play = tmp_path / 'drill.yml'
    demo = open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')).read()
    drill_play.write_text(demo[:demo.index('  tasks:\n')] + (
        '    omero_drill_root: "{{ omero_demo_root }}/drill"\n'
        '  tasks:\n    - name: Drill\n      ansible.builtin.include_role:\n'
        '        name: omero.backup.maintenance\n        tasks_from: drill\n'))
    drill = run_playbook(str(drill_play), extra_vars={'omero_demo_sandbox': description})
    assert drill['rc'] == 0, drill['stdout'][-6000:]
    drill_status = json.load(open(os.path.join(root, 'status', 'status.json')))['jobs']['drill']['last_success']
    assert drill_status['details']['set_id'] == latest['set_id']
    assert float(drill_status['details']['rto_seconds']) > 0
    # The drill proved a sample of the restored files by their checksums and found none missing.
    assert int(drill_status['details']['proven_files']) > 0 and int(drill_status['details']['missing_files']) == 0
    assert not os.path.exists(os.path.join(root, 'drill'))
    databases = [row[0] for row in query(description, 'SELECT datname FROM pg_database')]
    assert 'omero_drill' not in databases and 'omero' in databases
    assert table_checksums(description) == before['tables']
