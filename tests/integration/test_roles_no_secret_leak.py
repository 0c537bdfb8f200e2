# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Passwords never on the process list or in -vvv output, and never left on disk after a killed run (issue 12,
items 3 and 4), on one real localhost sandbox whose cluster asks for passwords over TCP (scram-sha-256).

* The backup, restore, drill and cleanse roles run in one ansible-playbook -vvv run with the superuser's login
  password and the owner's password set, every database connection over TCP (so both passwords are really used),
  while a thread reads /proc/*/cmdline of every process and /proc/*/environ of every process but the ones that
  legitimately hold a password (a module's own python and the PostgreSQL client tools it starts with PGPASSWORD
  in their environment, as module.run_command(environ_update=...) does) about every 20 ms.
* A restore is killed with kill -9 (the controller, the module and all) while db_restore waits behind a
  PostgreSQL lock (the role's database step, a known point of the run); the next restore's preflight removes the
  staging the killed run left, and no file holding a password stays under the staging parent, ~/.ansible/tmp or
  /tmp.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import subprocess
import threading
import time

from helpers.ansible import REPO_ROOT, VENV_BIN, ansible_env, module_results, run_playbook
from helpers.processes import cmdline, kill_tree, process_tree
from helpers.sandbox import drop_database_and_owner, psycopg2_connect

# Processes a password may legitimately live in: a module's python (the password is one of its arguments, which
# come on stdin with pipelining) and what it starts with PGPASSWORD in the environment (module.run_command's
# environ_update: pg_dump, pg_restore, and what they start). A task's `environment:` instead lands on the command
# line of the shell that starts the module's python (its parent), and in the environment of that python.
MODULE_PYTHON = re.compile(br'^\S*python[0-9.]*(\0(\S*/AnsiballZ_\w+\.py)?)?\0?$')


def role_task(role, tasks_from=None):
    return ('    - name: Run %s%s\n      ansible.builtin.include_role:\n        name: omero.backup.%s\n%s'
            % (role, (' ' + tasks_from) if tasks_from else '', role, ('        tasks_from: %s\n' % tasks_from) if tasks_from else ''))


def password_play(path, description, tasks):
    """playbooks/demo.yml's play with every database connection over TCP, with a password."""
    demo = open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')).read()
    header = demo[:demo.index('  tasks:\n')]
    header = header.replace('    omero_backup_db_login_unix_socket: "{{ omero_demo_sandbox.postgres.host }}"\n',
                            '    omero_backup_db_login_host: "{{ omero_demo_sandbox.postgres.tcp_host }}"\n'
                            '    omero_backup_db_login_password: "{{ omero_demo_sandbox.postgres.superuser_password }}"\n')
    assert 'omero_backup_db_login_password' in header
    path.write_text(header + '    omero_drill_root: "{{ omero_demo_root }}/drill"\n'
                    '    omero_cleanse_quarantine_dir: "{{ omero_demo_root }}/quarantine"\n' + '  tasks:\n' + tasks)
    return str(path)


class ProcSampler(threading.Thread):
    """Reads /proc every ~20 ms; records any process showing one of the secrets where it must not."""

    def __init__(self, secrets):
        threading.Thread.__init__(self)
        self.daemon = True
        self.secrets = [secret.encode('utf-8') for secret in secrets]
        self.stop_event = threading.Event()
        self.rounds = 0
        self.processes_seen = 0
        self.sanctioned = {}
        self.leaks = []

    @staticmethod
    def _read(pid, name):
        try:
            with open('/proc/%s/%s' % (pid, name), 'rb') as handle:
                return handle.read()
        except (IOError, OSError):
            return b''

    def _redact(self, data):
        for secret in self.secrets:
            data = data.replace(secret, b'<password>')
        return data.replace(b'\0', b' ').strip().decode('utf-8', 'replace')[:300]

    def _parent(self, pid):
        match = re.search(r'^PPid:\s+(\d+)$', self._read(pid, 'status').decode('utf-8', 'replace'), re.M)
        return match.group(1) if match and match.group(1) not in ('0', '1') else None

    def _under_module(self, pid):
        """Whether pid is a module's python, or started by one (through any number of processes)."""
        for _level in range(8):
            if pid is None:
                return False
            if MODULE_PYTHON.match(self._read(pid, 'cmdline')):
                # The module's environment holds the password only through a task's `environment:`, which the
                # shell that started it (its parent) then shows on its command line: caught as a cmdline leak.
                return True
            pid = self._parent(pid)
        return False

    def _describe(self, pid):
        """The process's command line and its parents', secrets redacted (for the failure message)."""
        chain = []
        for _level in range(4):
            chain.append('%s: %s' % (pid, self._redact(self._read(pid, 'cmdline'))))
            pid = self._parent(pid)
            if pid is None:
                break
        return ' <- '.join(chain)

    def _holds(self, data):
        return any(secret in data for secret in self.secrets)

    def run(self):
        own = str(os.getpid())
        while not self.stop_event.is_set():
            for pid in os.listdir('/proc'):
                if not pid.isdigit() or pid == own:
                    continue
                self.processes_seen += 1
                cmdline = self._read(pid, 'cmdline')
                if self._holds(cmdline):
                    self.leaks.append(('cmdline', pid, self._read(pid, 'comm').strip(), self._describe(pid)))
                environ = self._read(pid, 'environ')
                if self._holds(environ):
                    comm = self._read(pid, 'comm').strip().decode('utf-8', 'replace')
                    if self._under_module(pid):
                        self.sanctioned.setdefault(comm, self._describe(pid))
                    else:
                        self.leaks.append(('environ', pid, comm, self._describe(pid)))
            self.rounds += 1
            self.stop_event.wait(0.02)

    def stop(self):
        self.stop_event.set()
        self.join()


def run_verbose(playbook, extra_vars, workdir):
    """ansible-playbook -vvv with the default callback; extra vars through a 0600 file. Returns (rc, output)."""
    vars_file = os.path.join(str(workdir), 'extra_vars.json')
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(extra_vars, handle)
    try:
        proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-vvv', '-i', 'localhost,', '-e', '@' + vars_file, playbook],
                              env=ansible_env({'ANSIBLE_STDOUT_CALLBACK': 'default'}), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=1800, check=False, cwd=str(workdir))
    finally:
        os.unlink(vars_file)
    return proc.returncode, proc.stdout


def test_no_password_on_the_process_list_or_in_verbose_output_during_every_role(sandbox_factory, tmp_path):
    description = sandbox_factory(objects=12, orphans=2, seed=31)
    postgres = description['postgres']
    secrets = [postgres['superuser_password'], postgres['owner_password']]
    play = password_play(tmp_path / 'all-roles.yml', description,
                         role_task('backup') + role_task('restore') + role_task('maintenance', 'drill')
                         + role_task('maintenance', 'cleanse'))
    sampler = ProcSampler(secrets)
    sampler.start()
    try:
        rc, output = run_verbose(play, {'omero_demo_sandbox': description, 'omero_restore_replace': True}, tmp_path)
    finally:
        sampler.stop()
    assert rc == 0, output[-8000:]
    # Every role really ran, with the password in use (the login over TCP needs it).
    for marker in ('Backup set ', 'Restored backup set ', 'restore and verification passed', 'omero_cleanse'):
        assert marker in output, marker
    assert sampler.rounds > 10 and sampler.processes_seen > 0
    print('sampler: %d rounds, %d process reads; a password seen only in the environment of a module or what it started:\n%s'
          % (sampler.rounds, sampler.processes_seen, '\n'.join('  %s: %s' % item for item in sorted(sampler.sanctioned.items()))))
    assert sampler.leaks == [], sampler.leaks
    for secret in secrets:
        assert secret not in output


def kill_run(run):
    """kill -9 of the controller, its workers and the module they run, all at once, as a crash would; their command lines."""
    frozen = process_tree(run.pid)
    cmdlines = [cmdline(pid) for pid in frozen]
    kill_tree(run.pid)
    run.wait()
    return [line for line in cmdlines if line]


def files_holding(roots, secrets, skip=()):
    """Regular files under roots whose content holds one of the secrets (skip: path prefixes left out)."""
    needles = [secret.encode('utf-8') for secret in secrets]
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [name for name in dirnames if not any(os.path.join(dirpath, name).startswith(prefix) for prefix in skip)
                           and name != 'pgdata']
            for name in filenames:
                full = os.path.join(dirpath, name)
                try:
                    if not os.path.isfile(full) or os.path.islink(full) or os.path.getsize(full) > 64 * 2 ** 20:
                        continue
                    with open(full, 'rb') as handle:
                        data = handle.read()
                except (IOError, OSError):
                    continue
                if any(needle in data for needle in needles):
                    found.append(full)
    return found


def test_a_restore_killed_mid_run_leaves_no_secret_once_the_next_run_has_started(sandbox_factory, tmp_path, tmp_path_factory):
    description = sandbox_factory(objects=12, orphans=1, seed=32)
    postgres = description['postgres']
    secrets = [postgres['superuser_password'], postgres['owner_password']]
    backup = run_playbook(password_play(tmp_path / 'backup.yml', description, role_task('backup')),
                          extra_vars={'omero_demo_sandbox': description})
    assert backup['rc'] == 0, backup['stdout'][-6000:]
    staging_parent = os.path.join(description['root'], 'staging')
    ansible_tmp = os.path.expanduser('~/.ansible/tmp')
    before = set(files_holding([ansible_tmp, '/tmp'], secrets, skip=(str(tmp_path_factory.getbasetemp()),)))

    # The disaster, then a restore held at its database step: CREATE ROLE of the dropped owner waits behind this lock.
    drop_database_and_owner(description)
    lock = psycopg2_connect(description, dbname='postgres')
    restore = password_play(tmp_path / 'restore.yml', description, role_task('restore'))
    vars_file = tmp_path / 'restore-vars.json'
    fd = os.open(str(vars_file), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump({'omero_demo_sandbox': description}, handle)
    run = None
    try:
        with lock.cursor() as cursor:
            cursor.execute('LOCK TABLE pg_catalog.pg_authid IN SHARE MODE')
        run = subprocess.Popen([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-e', '@' + str(vars_file), restore],
                               env=ansible_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path),
                               start_new_session=True)
        waiting = 0
        for _attempt in range(600):
            with psycopg2_connect(description, dbname='postgres') as probe, probe.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_catalog.pg_locks WHERE NOT granted AND relation = 'pg_catalog.pg_authid'::regclass")
                waiting = cursor.fetchone()[0]
            probe.close()
            if waiting or run.poll() is not None:
                break
            time.sleep(0.5)
        assert waiting, 'the restore never reached its database step (rc %s)' % run.poll()
        killed = kill_run(run)
        assert [cmdline for cmdline in killed if MODULE_PYTHON.match(cmdline)], 'no module was running: %s' % killed
    finally:
        if run is not None and run.poll() is None:
            kill_run(run)
        lock.rollback()
        lock.close()

    # The killed run left its staging (the config with the owner's password is in it).
    left = sorted(os.listdir(staging_parent)) if os.path.isdir(staging_parent) else []
    left_with_secrets = files_holding([staging_parent], secrets) if left else []

    rerun = run_playbook(restore, extra_vars={'omero_demo_sandbox': description, 'omero_restore_replace': True})
    assert rerun['rc'] == 0, rerun['stdout'][-6000:]
    # Nothing holding a password appeared in the temporary directories (a module payload of the killed run
    # would be in ~/.ansible/tmp without pipelining).
    after = set(files_holding([ansible_tmp, '/tmp'], secrets, skip=(str(tmp_path_factory.getbasetemp()),)))
    assert sorted(after - before) == [], sorted(after - before)
    # The killed run's staging, which held passwords, was removed by the next run's preflight.
    assert left and left_with_secrets, 'the killed run left no staging with a password: the test proves nothing'
    # What the rerun removed in the staging parent, keyed on the file module's results (its own fresh staging,
    # removed at its end, has another mkdtemp name than any of the killed run's).
    removed = [outcome for outcome in module_results(rerun, 'ansible.builtin.file', changed=True)
               if os.path.dirname(str(outcome.get('path', ''))) == staging_parent.rstrip('/')]
    removed_paths = [outcome['path'] for outcome in removed if os.path.basename(outcome['path']) in left]
    assert sorted(os.path.basename(path) for path in removed_paths) == left, removed
    assert os.listdir(staging_parent) == []
