# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles under the two faults of issue 8, on one real localhost sandbox (no traffic leaves loopback):

* the store host is unreachable during a backup (an inventory host on 127.0.0.1 whose ssh port is closed):
  the play fails naming the step, status and metrics record the failure and keep the last success, and no
  complete set appears on the store;
* the database server is down during a restore (the sandbox cluster stopped): the play stops before the
  database step, and the binary repository step never runs (the data dir is byte-for-byte untouched);
* a restore that fails at its last step (the binary repository) after the config and the database came back:
  OMERO.server stays down, the failure and the status file name what is restored and what is not, and a
  rerun of only the rest finishes the restore.

Both start from one good backup made by the same playbook variables as playbooks/demo.yml.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re

import pytest

import omero_sandbox
from helpers.ansible import REPO_ROOT, failed_results, module_results, run_playbook
from helpers.sandbox import drop_database_and_owner, free_tcp_port, query, tree_fingerprint

UNREACHABLE_STORE = 'omero-store-down'


def demo_play(path, tasks):
    """playbooks/demo.yml's play header and variables with other tasks."""
    demo = open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')).read()
    path.write_text(demo[:demo.index('  tasks:\n')] + '  tasks:\n' + tasks)
    return str(path)


def role_task(role, tasks_from=None):
    return ('    - name: Run %s\n      ansible.builtin.include_role:\n        name: omero.backup.%s\n%s'
            % (role, role, ('        tasks_from: %s\n' % tasks_from) if tasks_from else ''))


def store_sets(root):
    sets_dir = os.path.join(root, 'store', 'sets')
    found = {}
    for name in sorted(os.listdir(sets_dir)):
        with open(os.path.join(sets_dir, name), 'rb') as handle:
            found[name] = handle.read()
    return found


def status_and_metrics(root):
    with open(os.path.join(root, 'status', 'status.json')) as handle:
        status = json.load(handle)
    with open(os.path.join(root, 'status', 'omero_backup.prom')) as handle:
        metrics = handle.read()
    return status, metrics


def metric(metrics, name, labels='job="backup"'):
    match = re.search(r'^%s\{%s\} (\S+)$' % (re.escape(name), re.escape(labels)), metrics, re.M)
    return float(match.group(1)) if match else None


def failed_steps(result, host='localhost'):
    """The failed results, in order, as (module, msg): tests key on results, not on task display names."""
    return [(outcome['action'], outcome.get('msg', '')) for outcome in failed_results(result, host)]


def ran(result, action, host='localhost'):
    """Whether a step running module `action` ran (was not skipped)."""
    return any(not outcome.get('skipped') for outcome in module_results(result, action, host))


def set_record_step_ran(result):
    # The set record is written by omero.backup.backup_set (issue 13); before it, by a script printing 'written'.
    return ran(result, 'omero.backup.backup_set') or any(
        outcome.get('stdout') in ('written', 'recorded') for outcome in module_results(result, 'ansible.builtin.shell'))


@pytest.fixture(scope='module')
def backed_up(tmp_path_factory):
    """A sandbox with one complete backup set on its local store."""
    root = str(tmp_path_factory.mktemp('faults-sandbox'))
    description = omero_sandbox.build(root, objects=12, orphans=1, seed=8)
    plays = tmp_path_factory.mktemp('faults-plays')
    backup = run_playbook(demo_play(plays / 'backup.yml', role_task('backup')), extra_vars={'omero_demo_sandbox': description})
    assert backup['rc'] == 0, backup['stdout'][-6000:]
    yield description, plays
    if os.environ.get('OMERO_SANDBOX_KEEP') != '1':
        omero_sandbox.destroy(root)


# The store host down for everyone, or up for the controller but its ssh port closed to rdiff-backup.
# Each with the step the role's failure message names and what that step's own refusal says.
STORE_FAULTS = {
    'store_down': ({'ansible_connection': 'ssh', 'ansible_ssh_common_args': '-o BatchMode=yes -o ConnectTimeout=5'},
                   'Refuse to back up to a store that does not answer', ') is unreachable: '),
    'store_ssh_closed': ({'ansible_connection': 'local'}, 'Refuse to back up when rdiff-backup cannot reach the store over ssh',
                         'does not answer ssh with rdiff-backup'),
}


@pytest.mark.parametrize('fault', sorted(STORE_FAULTS))
def test_backup_with_the_store_unreachable_records_a_failure_and_no_set(backed_up, fault):
    description, plays = backed_up
    root = description['root']
    sets_before = store_sets(root)
    latest_before = json.loads(sets_before['latest.json'])
    status_before, _metrics = status_and_metrics(root)
    success_before = status_before['jobs']['backup']['last_success']
    assert success_before['set_id'] == latest_before['set_id']

    closed_port = free_tcp_port()
    store_vars, failing_step, refusal = STORE_FAULTS[fault]
    inventory = plays / 'unreachable-store.yml'
    inventory.write_text(json.dumps({'all': {'hosts': {
        'localhost': {'ansible_connection': 'local'},
        UNREACHABLE_STORE: dict(store_vars, ansible_host='127.0.0.1', ansible_port=closed_port)}}}))
    result = run_playbook(demo_play(plays / 'backup-unreachable.yml', role_task('backup')), inventory=str(inventory),
                          extra_vars={'omero_demo_sandbox': description, 'omero_backup_store_host': UNREACHABLE_STORE,
                                      'omero_backup_store_ssh_port': closed_port})
    assert result['rc'] != 0, result['stdout'][-6000:]
    # A failure the role recorded, not an unreachable host that skipped the rescue.
    assert result['stats']['localhost']['failures'] >= 1 and not result['stats']['localhost'].get('unreachable'), result['stats']

    # The step that met the unreachable store failed, and the play's last word names it and says no set was recorded.
    failed = failed_steps(result)
    assert [action for action, _msg in failed] == ['ansible.builtin.assert', 'ansible.builtin.fail'], failed
    assert refusal in failed[0][1], failed
    final = failed[-1][1]
    assert final.startswith('No complete backup set was recorded: %s failed: ' % failing_step), final
    assert '127.0.0.1' in final and 'Connection refused' in final, final
    assert not ran(result, 'omero.backup.datadir_backup')
    assert not set_record_step_ran(result)

    # Status and metrics say failure; the last success is the earlier good set, untouched.
    status, metrics = status_and_metrics(root)
    job = status['jobs']['backup']
    assert job['last_run']['state'] == 'failed'
    assert job['last_failure']['finished'] > success_before['finished']
    assert job['last_failure'] != status_before['jobs']['backup'].get('last_failure')
    assert failing_step in job['last_failure']['error'] and '127.0.0.1' in job['last_failure']['error']
    assert job['last_success'] == success_before
    assert metric(metrics, 'omero_backup_last_run_success') == 0
    assert metric(metrics, 'omero_backup_last_failure_timestamp_seconds') == pytest.approx(job['last_failure']['finished'])
    assert metric(metrics, 'omero_backup_last_success_timestamp_seconds') == pytest.approx(success_before['finished'])
    assert metric(metrics, 'omero_backup_component_success', 'job="backup",component="datadir"') == 0

    # No new complete set, latest.json as it was.
    assert store_sets(root) == sets_before
    assert not os.path.exists(os.path.join(root, 'omero-backup.lock'))
    assert description['postgres']['owner_password'] not in result['stdout']
    assert description['postgres']['superuser_password'] not in result['stdout']


def database_host_down_inventory(plays):
    """localhost, and omero-db-down: a database host whose ssh port is closed (no traffic leaves loopback)."""
    inventory = plays / 'database-host-down.yml'
    inventory.write_text(json.dumps({'all': {'hosts': {
        'localhost': {'ansible_connection': 'local'},
        'omero-db-down': {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': free_tcp_port(),
                          'ansible_ssh_common_args': '-o BatchMode=yes -o ConnectTimeout=5'}}}}))
    return inventory


def test_backup_with_the_database_host_unreachable_records_a_failure_and_no_set(backed_up):
    description, plays = backed_up
    root = description['root']
    sets_before = store_sets(root)
    inventory = database_host_down_inventory(plays)
    result = run_playbook(demo_play(plays / 'backup-db-down.yml', role_task('backup')), inventory=str(inventory),
                          extra_vars={'omero_demo_sandbox': description, 'omero_backup_database_host': 'omero-db-down'})
    assert result['rc'] != 0, result['stdout'][-6000:]
    assert not result['stats']['localhost'].get('unreachable'), result['stats']
    failed = failed_steps(result)
    assert [action for action, _msg in failed] == ['ansible.builtin.assert', 'ansible.builtin.fail'], failed
    assert failed[0][1].startswith('omero-db-down: unreachable: '), failed
    final = failed[-1][1]
    assert 'omero-db-down: unreachable: ' in final, final
    status, metrics = status_and_metrics(root)
    assert status['jobs']['backup']['last_run']['state'] == 'failed'
    assert metric(metrics, 'omero_backup_last_run_success') == 0
    assert store_sets(root) == sets_before
    assert not os.path.exists(os.path.join(root, 'omero-backup.lock'))


def test_restore_with_the_database_down_stops_before_the_binary_repository(backed_up):
    description, plays = backed_up
    root = description['root']
    datadir_before = tree_fingerprint(description['datadir'])
    omero_sandbox.stop(root)
    try:
        # replace: true, so only the role's own order keeps the binary step from overwriting the data dir.
        result = run_playbook(demo_play(plays / 'restore.yml', role_task('restore')),
                              extra_vars={'omero_demo_sandbox': description, 'omero_restore_replace': True})
    finally:
        omero_sandbox.start(root)
    assert result['rc'] != 0, result['stdout'][-6000:]
    failed = failed_steps(result)
    assert [action for action, _msg in failed] == ['ansible.builtin.assert', 'ansible.builtin.fail'], failed
    message = failed[0][1]
    assert message.startswith('Nothing restored: the database server on localhost does not accept connections'), message
    assert 'no response' in message, message
    final = failed[-1][1]
    assert 'Restored: nothing. Not restored: config, database, datadir.' in final, final
    status, metrics = status_and_metrics(root)
    restore = status['jobs']['restore']
    assert restore['last_run']['state'] == 'failed' and 'does not accept connections' in restore['last_failure']['error']
    assert {name: part['ok'] for name, part in restore['last_run']['components'].items()} == {
        'config': False, 'database': False, 'datadir': False}
    for later in ('omero.backup.db_restore', 'omero.backup.datadir_restore'):
        assert not ran(result, later), later
    assert tree_fingerprint(description['datadir']) == datadir_before
    staging = os.path.join(root, 'staging')
    assert not os.path.exists(staging) or os.listdir(staging) == []
    assert description['postgres']['owner_password'] not in result['stdout']


def test_restore_with_the_database_host_unreachable_is_refused_and_recorded(backed_up):
    description, plays = backed_up
    root = description['root']
    datadir_before = tree_fingerprint(description['datadir'])
    inventory = database_host_down_inventory(plays)
    result = run_playbook(demo_play(plays / 'restore-db-down.yml', role_task('restore')), inventory=str(inventory),
                          extra_vars={'omero_demo_sandbox': description, 'omero_restore_replace': True,
                                      'omero_backup_database_host': 'omero-db-down'})
    assert result['rc'] != 0, result['stdout'][-6000:]
    # A failure the role recorded, not an unreachable host that skipped the rescue.
    assert not result['stats']['localhost'].get('unreachable'), result['stats']
    failed = failed_steps(result)
    assert [action for action, _msg in failed] == ['ansible.builtin.assert', 'ansible.builtin.fail'], failed
    assert failed[0][1].startswith('Nothing restored: the database host omero-db-down is unreachable'), failed
    final = failed[-1][1]
    assert 'Nothing restored: the database host omero-db-down is unreachable' in final and 'Restored: nothing.' in final, final
    status, _metrics = status_and_metrics(root)
    assert 'omero-db-down is unreachable' in status['jobs']['restore']['last_failure']['error']
    assert tree_fingerprint(description['datadir']) == datadir_before


def test_restore_failing_at_the_binary_repository_names_the_steps_done_and_a_rerun_finishes_it(backed_up):
    """The database and config are lost but the data dir survived: without replace, step 3 refuses to
    overwrite it after steps 1 and 2 are done. The operator reruns only step 3, with replace."""
    description, plays = backed_up
    root = description['root']
    postgres = description['postgres']
    drop_database_and_owner(description)
    os.unlink(os.path.join(description['omerodir'], 'etc', 'grid', 'config.xml'))
    datadir_before = tree_fingerprint(description['datadir'])

    restore = demo_play(plays / 'restore-partial.yml', role_task('restore'))
    result = run_playbook(restore, extra_vars={'omero_demo_sandbox': description})
    assert result['rc'] != 0, result['stdout'][-6000:]
    failed = failed_steps(result)
    assert [action for action, _msg in failed] == ['omero.backup.datadir_restore', 'ansible.builtin.fail'], failed
    final = failed[-1][1]
    assert 'Restored: config, database. Not restored: datadir.' in final, final
    assert '-e omero_restore_config=false -e omero_restore_database=false' in final, final
    assert 'not empty' in final or 'replace' in final, final
    # OMERO.server is not started again after the failure: service.yml ran at most once (the stop, when the role
    # manages the service), never for the start.
    assert [outcome.get('include') for outcome in module_results(result, 'ansible.builtin.include_tasks')].count('service.yml') <= 1
    assert tree_fingerprint(description['datadir']) == datadir_before
    # Steps 1 and 2 really are done: the owner role, the database and the config are back.
    assert query(description, 'SELECT count(*) FROM pg_roles WHERE rolname = %s', (postgres['owner'],), dbname='postgres')[0][0] == 1
    assert os.path.exists(os.path.join(description['omerodir'], 'etc', 'grid', 'config.xml'))
    status, metrics = status_and_metrics(root)
    record = status['jobs']['restore']
    assert record['last_run']['state'] == 'failed'
    assert {name: part['ok'] for name, part in record['last_run']['components'].items()} == {
        'config': True, 'database': True, 'datadir': False}
    with open(os.path.join(root, 'status', 'omero_backup_restore.prom')) as handle:
        assert metric(handle.read(), 'omero_backup_last_run_success', 'job="restore"') == 0

    rerun = run_playbook(restore, extra_vars={'omero_demo_sandbox': description, 'omero_restore_config': False,
                                              'omero_restore_database': False, 'omero_restore_replace': True})
    assert rerun['rc'] == 0, rerun['stdout'][-6000:]
    assert not ran(rerun, 'omero.backup.db_restore')
    verdict = module_results(rerun, 'omero.backup.verify')[-1]
    assert verdict['ok'] is True, verdict
    status, _metrics = status_and_metrics(root)
    record = status['jobs']['restore']
    assert record['last_run']['state'] == 'succeeded'
    assert {name: part['ok'] for name, part in record['last_success']['components'].items()} == {'datadir': True}
    assert postgres['owner_password'] not in result['stdout'] + rerun['stdout']
