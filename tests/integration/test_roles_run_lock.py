# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run lock of the roles (module run_lock) on one real localhost sandbox:

* while a backup holds the lock (held at its dump step by a PostgreSQL lock), a restore of the same site is
  refused, with a message naming the backup's run and controller process, and the backup's lock is left as it was;
* ansible-playbook itself killed with -9 mid-backup (the whole process tree, frozen first: ansible's workers
  call setsid) leaves its lock; the next backup takes it over with a warning naming the killed run and
  succeeds, with no manual step.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import omero_sandbox
from helpers.ansible import VENV_BIN, ansible_env, run_playbook
from helpers.sandbox import psycopg2_connect, query
from helpers.processes import kill_tree
from test_roles_faults import demo_play, role_task, status_and_metrics

LOCK_NAME = 'omero-backup-run-omero-server.json'
WAIT = 300  # an upper bound on how long a step may take to get somewhere, never an assertion on speed


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('runlock-sandbox'))
    description = omero_sandbox.build(root, objects=12, orphans=0, seed=13)
    yield description, tmp_path_factory.mktemp('runlock-plays')
    if os.environ.get('OMERO_SANDBOX_KEEP') != '1':
        omero_sandbox.destroy(root)


def lock_record(root):
    path = os.path.join(root, 'locks', LOCK_NAME)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def start_playbook(path, extra_vars, workdir):
    """ansible-playbook as an operator starts it, in the background; extra vars through a 0600 file."""
    vars_file = os.path.join(workdir, 'extra_vars.json')
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(extra_vars, handle)
    out = open(os.path.join(workdir, 'out.txt'), 'w')
    return subprocess.Popen([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-e', '@' + vars_file, path],
                            env=ansible_env(), stdout=out, stderr=subprocess.STDOUT, cwd=workdir)


class HeldAtTheDump(object):
    """A PostgreSQL lock on a table every dump reads: the backup waits at its dump step until released."""

    def __init__(self, description):
        self.description = description
        self.conn = psycopg2_connect(description)
        with self.conn.cursor() as cursor:
            cursor.execute('LOCK TABLE pixels IN ACCESS EXCLUSIVE MODE')

    def wait_for_waiter(self, proc):
        deadline = time.time() + WAIT
        while time.time() < deadline:
            waiting = query(self.description, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pixels'::regclass")
            if waiting[0][0] > 0:
                return
            assert proc.poll() is None, 'the run ended (rc %s) before it reached the dump' % proc.returncode
            time.sleep(1)
        raise AssertionError('the run never reached the dump step')

    def release(self):
        self.conn.rollback()
        self.conn.close()


def test_a_killed_controller_leaves_a_lock_the_next_run_takes_over_and_a_restore_meanwhile_is_refused(site):
    description, plays = site
    root = description['root']
    backup_play = demo_play(plays / 'backup.yml', role_task('backup'))
    extra_vars = {'omero_demo_sandbox': description}
    workdir = tempfile.mkdtemp(prefix='runlock-', dir=str(plays))
    held = HeldAtTheDump(description)
    proc = None
    try:
        proc = start_playbook(backup_play, extra_vars, workdir)
        held.wait_for_waiter(proc)
        record = lock_record(root)
        # The holder is this controller's ansible-playbook itself, at the dump step.
        assert record['controller_pid'] == proc.pid and record['step'] == 'database', record
        assert record['controller_host'] == os.uname()[1] and record['job'] == 'backup'
        assert oct(os.stat(os.path.join(root, 'locks', LOCK_NAME)).st_mode & 0o777) == '0o600'
        assert oct(os.stat(os.path.join(root, 'locks')).st_mode & 0o777) == '0o700'

        # A restore of the same site meanwhile: refused, naming the backup; the backup's lock is untouched.
        restore = run_playbook(demo_play(plays / 'restore.yml', role_task('restore')), extra_vars=extra_vars)
        assert restore['rc'] != 0
        refusal = [task['hosts']['localhost'] for play in restore['plays'] for task in play['tasks']
                   if task['hosts'].get('localhost', {}).get('holder') and task['hosts']['localhost'].get('failed')]
        assert refusal, restore['stdout'][-4000:]
        assert refusal[0]['holder']['run_id'] == record['run_id']
        message = refusal[0]['msg']
        assert 'run %s' % record['run_id'] in message and 'pid %d' % proc.pid in message, message
        assert 'by hand' not in message
        assert lock_record(root) == record

        killed = kill_tree(proc.pid)
        proc.wait()
        assert proc.pid in killed and len(killed) > 2, killed
    finally:
        if proc is not None and proc.poll() is None:
            kill_tree(proc.pid)
            proc.wait()
        held.release()
        shutil.rmtree(workdir, ignore_errors=True)

    # The killed run left its lock behind, as a killed controller does.
    assert lock_record(root)['run_id'] == record['run_id']

    result = run_playbook(backup_play, extra_vars=extra_vars)
    assert result['rc'] == 0, result['stdout'][-6000:]
    taken = [task['hosts']['localhost'] for play in result['plays'] for task in play['tasks']
             if (task['hosts'].get('localhost') or {}).get('taken_over')]
    assert len(taken) == 1 and taken[0]['taken_over']['run_id'] == record['run_id'], taken
    warned = ' '.join(result['stdout'].split()) + ' '.join(result['stderr'].split())
    assert 'taken over from run %s' % record['run_id'] in warned and '(pid %d) is gone' % proc.pid in warned
    assert lock_record(root) is None
    status, _metrics = status_and_metrics(root)
    assert status['jobs']['backup']['last_run']['state'] == 'succeeded'
