# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode over the roles, on one real localhost sandbox: every check run succeeds, reports what a
real run would change, and changes nothing (data dir, OMERODIR, store, status files, database).

In file order, on one site:

1. a backup in check mode on a site never backed up: would save the config, dump, back up the data
   dir and write a set; nothing is made (no backup directory, store, lock or status file);
2. a real backup, then the maintenance entry points in check mode (cleanse with apply, logs): nothing
   removed; a drill in check mode is refused (a drill is a real restore into scratch locations);
3. the disaster, then a restore in check mode: each step reports what it would restore (the config
   with a diff), nothing comes back, the staging copies are gone.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import shutil

import pytest

import omero_sandbox
from omero_sandbox.idpath import id_dir_relpath
from helpers.ansible import REPO_ROOT, failed_results, module_results, run_playbook
from helpers.sandbox import drop_database_and_owner, query, tree_fingerprint

# omero rewrites config.xml's "generated at" comment whenever it reads it (docs/config.md).
GENERATED_STAMP = re.compile(br'This file was generated at [^\n]*')


def play(path, tasks, extra_vars_lines=''):
    demo = open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')).read()
    path.write_text(demo[:demo.index('  tasks:\n')] + extra_vars_lines + '  tasks:\n' + tasks)
    return str(path)


def role_task(role, tasks_from=None):
    return ('    - name: Run %s\n      ansible.builtin.include_role:\n        name: omero.backup.%s\n%s'
            % (role, role, ('        tasks_from: %s\n' % tasks_from) if tasks_from else ''))


def site_state(description):
    """Everything a run could change, except the database cluster's own files (see database_state)."""
    root = description['root']
    state = {}
    for name in os.listdir(root):
        path = os.path.join(root, name)
        # staging: the private staging parent, made by staging (which runs for real in check mode); its
        # emptiness after a run is checked on its own.
        if name in ('pgdata', 'pgsock', 'staging') or not os.path.isdir(path):
            continue
        state[name] = tree_fingerprint(path)
    config_xml = os.path.join(description['omerodir'], 'etc', 'grid', 'config.xml')
    for relpath in list(state.get('OMERO.server', {})):
        if relpath == os.path.join('etc', 'grid', 'config.xml'):
            with open(config_xml, 'rb') as handle:
                state['OMERO.server'][relpath] = GENERATED_STAMP.sub(b'', handle.read())
    state['top'] = sorted(name for name in os.listdir(root) if name != 'staging')
    return state


def database_state(description):
    postgres = description['postgres']
    state = {'databases': sorted(row[0] for row in query(description, 'SELECT datname FROM pg_database', dbname='postgres')),
             'roles': sorted(row[0] for row in query(description, 'SELECT rolname FROM pg_roles', dbname='postgres'))}
    if postgres['dbname'] in state['databases']:
        state['rows'] = query(description, "SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY relname")
        state['files'] = query(description, 'SELECT id, hash FROM originalfile ORDER BY id')
    return state


def assert_unchanged(before, after):
    """Name what changed, not just that something did."""
    differences = []
    for part in sorted(set(before) | set(after)):
        old, new = before.get(part), after.get(part)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            differences += ['%s/%s' % (part, key) for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
        else:
            differences.append(part)
    assert not differences, differences


def changed(result, action, **fields):
    """The changed results of the steps that ran module `action` (tests key on results, not on task names)."""
    return module_results(result, action, changed=True, **fields)


def changed_paths(result):
    return [outcome.get('path') for outcome in changed(result, 'ansible.builtin.file')]


def said(result, text):
    """A changed debug message (check mode saying what a real run would do) that contains `text`."""
    return any(text in str(outcome.get('msg', '')) for outcome in changed(result, 'ansible.builtin.debug'))


def set_record_written(result):
    # The set record is written by omero.backup.backup_set (issue 13); before it, by a script printing 'written'.
    return bool(changed(result, 'omero.backup.backup_set')) or any(
        outcome.get('stdout') == 'written' for outcome in changed(result, 'ansible.builtin.shell'))


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('check-sandbox'))
    # No planted orphans: some carry ids far above the database's, which makes cleanse refuse (rightly);
    # test 2 adds one ordinary orphan instead.
    description = omero_sandbox.build(root, objects=12, orphans=0, seed=14)
    yield description, tmp_path_factory.mktemp('check-plays')
    if os.environ.get('OMERO_SANDBOX_KEEP') != '1':
        omero_sandbox.destroy(root)


def test_backup_in_check_mode_reports_every_part_and_makes_nothing(site):
    description, plays = site
    root = description['root']
    # A site never backed up: the backup directory of the official OMERO backup procedure is not there yet.
    shutil.rmtree(os.path.join(description['datadir'], 'backup'))
    before = dict(site_state(description), database=database_state(description))

    result = run_playbook(play(plays / 'backup.yml', role_task('backup')), check=True, diff=True,
                          extra_vars={'omero_demo_sandbox': description})
    assert result['rc'] == 0, result['stdout'][-6000:]
    assert_unchanged(before, dict(site_state(description), database=database_state(description)))
    for absent in ('store', 'status', 'locks', os.path.join('OMERO', 'backup')):
        assert not os.path.exists(os.path.join(root, absent)), absent

    # The backup directory and the store's sets/ would be made; the config saved.
    for would in (os.path.join(description['datadir'], 'backup'), os.path.join(root, 'store', 'sets')):
        assert would in changed_paths(result), (would, changed_paths(result))
    assert changed(result, 'omero.backup.config_save')
    # Neither the dump directory nor the store exists yet, and the modules would refuse their missing parents,
    # which a real run makes at preflight: check mode says what a real run would do instead.
    assert said(result, 'does not exist yet; a real run creates it and dumps'), result['stdout'][-6000:]
    assert said(result, 'into a new repository'), result['stdout'][-6000:]
    assert set_record_written(result), result['stdout'][-6000:]
    assert changed(result, 'omero.backup.status')
    assert description['postgres']['owner_password'] not in result['stdout']


def test_maintenance_in_check_mode_removes_nothing_and_a_drill_is_refused(site):
    description, plays = site
    backup = run_playbook(play(plays / 'backup-real.yml', role_task('backup')), extra_vars={'omero_demo_sandbox': description})
    assert backup['rc'] == 0, backup['stdout'][-6000:]
    # An ordinary orphan: the Pixels file of an id just above the highest pixels row.
    orphan_id = query(description, 'SELECT max(id) + 1 FROM pixels')[0][0]
    orphan = os.path.join(description['datadir'], 'Pixels', id_dir_relpath(orphan_id), str(orphan_id))
    if not os.path.isdir(os.path.dirname(orphan)):
        os.makedirs(os.path.dirname(orphan))
    with open(orphan, 'wb') as handle:
        handle.write(b'orphan')
    before = dict(site_state(description), database=database_state(description))

    maintenance = play(plays / 'maintenance.yml', role_task('maintenance', 'cleanse') + role_task('maintenance', 'logs'),
                       '    omero_cleanse_apply: true\n    omero_cleanse_min_age: 0s\n'
                       '    omero_logs_keep: 0\n    omero_logs_delete_older_than: 0s\n')
    result = run_playbook(maintenance, check=True, diff=True, extra_vars={'omero_demo_sandbox': description})
    assert result['rc'] == 0, result['stdout'][-6000:]
    assert_unchanged(before, dict(site_state(description), database=database_state(description)))
    cleanse = module_results(result, 'omero.backup.cleanse')
    assert cleanse and cleanse[-1]['changed'] and os.path.exists(orphan), cleanse
    assert changed(result, 'omero.backup.logs'), result['stdout'][-6000:]

    drill = run_playbook(play(plays / 'drill.yml', role_task('maintenance', 'drill'), '    omero_drill_root: "{{ omero_demo_root }}/drill"\n'),
                         check=True, extra_vars={'omero_demo_sandbox': description})
    assert drill['rc'] != 0
    refusal = failed_results(drill)
    assert refusal and refusal[0]['action'] == 'ansible.builtin.assert' and 'check mode would prove nothing' in refusal[0]['msg'], refusal
    assert_unchanged(before, dict(site_state(description), database=database_state(description)))


def test_restore_in_check_mode_after_a_disaster_reports_each_step_and_restores_nothing(site):
    description, plays = site
    postgres = description['postgres']
    drop_database_and_owner(description)
    shutil.rmtree(description['datadir'])
    os.unlink(os.path.join(description['omerodir'], 'etc', 'grid', 'config.xml'))
    before = dict(site_state(description), database=database_state(description))

    result = run_playbook(play(plays / 'restore.yml', role_task('restore')), check=True, diff=True,
                          extra_vars={'omero_demo_sandbox': description})
    assert result['rc'] == 0, result['stdout'][-6000:]
    after = dict(site_state(description), database=database_state(description))
    # Staging really restores the set's backup/ directory into the staging area, and rdiff-backup logs
    # every restore in the repository (documented in roles/restore/README.md).
    for state in (before, after):
        state['store'].pop(os.path.join('datadir', 'rdiff-backup-data', 'restore.log'), None)
    assert_unchanged(before, after)
    assert os.listdir(os.path.join(description['root'], 'staging')) == []

    config = module_results(result, 'omero.backup.config_load')[-1]
    assert config['changed'] and config['diff'], config
    assert postgres['owner_password'] not in str(config['diff'])
    # The tasks of the other engine (restic's staging of the set's dump and config) are skipped.
    assert [ran for ran in module_results(result, 'omero.backup.db_restore') if not ran.get('skipped')][-1]['changed']
    assert [ran for ran in module_results(result, 'omero.backup.datadir_restore') if not ran.get('skipped')][-1]['changed']
    # Check mode restores nothing, so nothing is verified.
    assert module_results(result, 'omero.backup.verify') == []
    assert postgres['owner_password'] not in result['stdout']
    assert postgres['superuser_password'] not in result['stdout']
