# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run collection modules and playbooks with the real `ansible-playbook` on localhost and return parsed results.

The collection is found through ANSIBLE_COLLECTIONS_PATH: the installed copy named by
OMERO_BACKUP_COLLECTIONS_PATH when the test runner set it (tests then exercise the built
tarball), otherwise a throw-away tree whose ansible_collections/omero/backup links to this checkout.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import atexit
import json
import os
import shutil
import subprocess
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.environ.get('OMERO_BACKUP_VENV', '/var/cache/omero-backup/venv')
VENV_BIN = os.path.join(VENV, 'bin')
DEFAULT_TIMEOUT = 900

_linked_tree = []


class AnsibleRunError(AssertionError):
    """ansible-playbook produced no usable result (syntax error, unknown module, crash)."""


def collections_path():
    installed = os.environ.get('OMERO_BACKUP_COLLECTIONS_PATH')
    if installed:
        if not os.path.isdir(os.path.join(installed, 'ansible_collections', 'omero', 'backup')):
            raise AnsibleRunError('OMERO_BACKUP_COLLECTIONS_PATH=%s holds no ansible_collections/omero/backup' % installed)
        return installed
    if not _linked_tree:
        tree = tempfile.mkdtemp(prefix='omero-backup-collections-')
        os.makedirs(os.path.join(tree, 'ansible_collections', 'omero'))
        os.symlink(REPO_ROOT, os.path.join(tree, 'ansible_collections', 'omero', 'backup'))
        os.chmod(tree, 0o755)  # modules run with become must still reach the collection
        atexit.register(shutil.rmtree, tree, True)
        _linked_tree.append(tree)
    return _linked_tree[0]


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update({
        'PATH': VENV_BIN + os.pathsep + env.get('PATH', '/usr/bin:/bin'),
        'ANSIBLE_COLLECTIONS_PATH': collections_path(),
        'ANSIBLE_STDOUT_CALLBACK': 'ansible.posix.json',
        'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
        'ANSIBLE_PYTHON_INTERPRETER': os.path.join(VENV_BIN, 'python'),
        'ANSIBLE_LOCALHOST_WARNING': '0',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_DEPRECATION_WARNINGS': '0',
        'ANSIBLE_SYSTEM_WARNINGS': '0',
        'ANSIBLE_BECOME_METHOD': 'su',
        'PYTHONDONTWRITEBYTECODE': '1',
    })
    env.update(extra or {})
    return env


def _parse_json_output(proc, argv):
    start = proc.stdout.find('{')
    if start < 0:
        raise AnsibleRunError('%s printed no JSON (rc %d)\nstdout:\n%s\nstderr:\n%s'
                              % (' '.join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    try:
        return json.loads(proc.stdout[start:])
    except ValueError as exc:
        raise AnsibleRunError('%s printed invalid JSON (%s)\nstdout:\n%s\nstderr:\n%s'
                              % (' '.join(argv), exc, proc.stdout[-4000:], proc.stderr[-4000:]))


def run_playbook(path, extra_vars=None, check=False, diff=False, inventory='localhost,', limit=None, extra_args=(),
                 env=None, timeout=DEFAULT_TIMEOUT):
    """Run a playbook; returns {'rc', 'stats', 'plays', 'stdout', 'stderr'} from the json callback.

    Extra vars go through a 0600 file, never argv, since they often carry passwords.
    """
    workdir = tempfile.mkdtemp(prefix='omero-backup-play-')
    try:
        argv = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory]
        if extra_vars:
            vars_file = os.path.join(workdir, 'extra_vars.json')
            fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'w') as handle:
                json.dump(extra_vars, handle)
            argv += ['-e', '@' + vars_file]
        if check:
            argv.append('--check')
        if diff:
            argv.append('--diff')
        if limit:
            argv += ['--limit', limit]
        argv += list(extra_args) + [path]
        proc = subprocess.run(argv, env=ansible_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, check=False, cwd=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    parsed = _parse_json_output(proc, argv)
    return {'rc': proc.returncode, 'stats': parsed.get('stats', {}), 'plays': parsed.get('plays', []),
            'stdout': proc.stdout, 'stderr': proc.stderr}


def task_result(playbook_result, task_name=None, host='localhost'):
    """The per-host result of the named task (default: the last task run on host)."""
    found = None
    for play in playbook_result['plays']:
        for task in play['tasks']:
            if host in task['hosts'] and (task_name is None or task['task']['name'] == task_name):
                found = task['hosts'][host]
    if found is None:
        raise AnsibleRunError('no result for task %r on %s\nstdout:\n%s\nstderr:\n%s'
                              % (task_name, host, playbook_result['stdout'][-4000:], playbook_result['stderr'][-4000:]))
    return found


def module_results(playbook_result, action, host='localhost', **fields):
    """What a step did, keyed on the module it ran and on its result fields, never on the task's display name.

    Every per-host result of `host` (a looped task gives one per item) from tasks that ran `action`
    (e.g. 'omero.backup.db_restore'), in the order they ran, whose fields equal `fields`
    (e.g. changed=True, failed=True). Tasks Ansible skipped are left out unless skipped=True is asked for.
    """
    found = []
    for play in playbook_result['plays']:
        for task in play['tasks']:
            outcome = task['hosts'].get(host)
            if outcome is None or outcome.get('action') != action:
                continue
            items = outcome.get('results') if isinstance(outcome.get('results'), list) else [outcome]
            for item in items:
                # A task Ansible skipped (the other engine's step, a condition not met) ran no step: left out unless
                # skipped=True is asked for. A module's own skipped=True (a recent backup kept) is a result and stays.
                ansible_skipped = item.get('skipped') and ('false_condition' in item or 'skip_reason' in item)
                if ansible_skipped and not fields.get('skipped'):
                    continue
                if all(item.get(key) == value for key, value in fields.items()):
                    found.append(item)
    return found


def failed_results(playbook_result, host='localhost'):
    """The failed per-host results of `host`, in order, each with its module in 'action' (ignored failures too)."""
    found = []
    for play in playbook_result['plays']:
        for task in play['tasks']:
            outcome = task['hosts'].get(host)
            if outcome and outcome.get('failed'):
                found.append(outcome)
    return found


def _unsafe_yaml(value):
    """Args as a YAML flow literal whose strings are !unsafe: passwords with '{{' reach the module verbatim."""
    if isinstance(value, dict):
        return '{%s}' % ', '.join('%s: %s' % (json.dumps(str(k)), _unsafe_yaml(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return '[%s]' % ', '.join(_unsafe_yaml(v) for v in value)
    if isinstance(value, str):
        return '!unsafe ' + json.dumps(value)
    return json.dumps(value)


def run_module(module_name, args, check=False, diff=False, become_user=None, env=None, timeout=DEFAULT_TIMEOUT,
               playbook_dir=None):
    """Run omero.backup.<module_name> (or a fully qualified name) with args on localhost; returns its result dict.

    The result carries `failed`, `msg`, `changed`, `diff` (with diff=True) and the module's return values.
    ``playbook_dir``: write the one-task playbook there (and remove it after) instead of in a temporary directory;
    over the local connection Ansible starts modules in the playbook's directory, so this is their working directory.
    """
    fqcn = module_name if '.' in module_name else 'omero.backup.' + module_name
    become = ''
    if become_user:
        become = '      become: true\n      become_user: %s\n      become_method: su\n' % json.dumps(become_user)
    play = ('- name: run %s\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n'
            '    - name: module under test\n%s      %s: %s\n' % (fqcn, become, fqcn, _unsafe_yaml(args)))
    workdir = None if playbook_dir else tempfile.mkdtemp(prefix='omero-backup-module-')
    playbook = None
    try:
        if workdir:
            os.chmod(workdir, 0o755)
            playbook = os.path.join(workdir, 'module.yml')
            fd = os.open(playbook, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the args may hold passwords
        else:
            fd, playbook = tempfile.mkstemp(prefix='.omero-backup-module-', suffix='.yml', dir=playbook_dir)
        with os.fdopen(fd, 'w') as handle:
            handle.write(play)
        result = run_playbook(playbook, check=check, diff=diff, env=env, timeout=timeout)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif playbook and os.path.lexists(playbook):
            os.unlink(playbook)
    module_result = task_result(result, 'module under test')
    module_result.setdefault('failed', False)
    return module_result
