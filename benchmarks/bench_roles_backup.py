# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole playbooks/backup.yml against the sum of the raw commands it stands for, in the same run.

    python benchmarks/bench_roles_backup.py [--root /var/tmp/omero-bench-roles] [--objects 2000] [--keep]

On one sandbox (all three inventory groups on localhost), times:

1. the raw commands an operator would run for one backup set: ``omero config get
   --show-password > file``, ``pg_dump -Fc``, ``pg_restore -f /dev/null`` (the read-through
   the dump module does), ``pg_dumpall --roles-only`` and ``rdiff-backup backup`` of the
   data dir to a fresh repository;
2. ``ansible-playbook playbooks/backup.yml`` into another fresh store.

Prints both wall times, the difference (Ansible's overhead: preflight, manifests,
checksums, status, task start-up; goal <= 15 s) and the ratio. Goals are printed,
never asserted. The load average is printed: on a shared machine it explains most
of the spread.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tools'))
sys.path.insert(0, os.path.join(REPO, 'tests'))

GOAL_OVERHEAD_SECONDS = 15.0


def timed(label, argv, env=None, stdout=None):
    started = time.time()
    subprocess.run(argv, env=dict(os.environ, **(env or {})), stdout=stdout, check=True)
    elapsed = time.time() - started
    print('  %-28s %7.2f s' % (label, elapsed))
    return elapsed


def raw_backup(description, work):
    postgres = description['postgres']
    pg_env = {'PGHOST': postgres['host'], 'PGPORT': str(postgres['port']), 'PGUSER': postgres['superuser']}
    user = description['omero_user']
    omero_env = {'OMERODIR': description['omerodir'], 'HOME': pwd.getpwnam(user).pw_dir}
    os.makedirs(work)
    total = 0.0
    with open(os.path.join(work, 'omero.config'), 'w') as handle:
        total += timed('omero config get', ['runuser', '-u', user, '--', description['omero_command'], 'config', 'get',
                                            '--show-password'], env=omero_env, stdout=handle)
    dump = os.path.join(work, 'omero.pg_dump')
    total += timed('pg_dump -Fc', ['pg_dump', '-Fc', '-f', dump, postgres['dbname']], env=pg_env)
    total += timed('pg_restore -f /dev/null', ['pg_restore', '-f', '/dev/null', dump], env=pg_env)
    total += timed('pg_dumpall --roles-only', ['pg_dumpall', '--roles-only', '-f', os.path.join(work, 'roles.sql')], env=pg_env)
    total += timed('rdiff-backup backup', ['rdiff-backup', 'backup', '--exclude', os.path.join(description['datadir'], 'BioFormatsCache'),
                                           description['datadir'], os.path.join(work, 'datadir')])
    return total


def playbook_backup(description, store):
    from helpers.ansible import ansible_env
    postgres = description['postgres']
    extra = {
        'omero_server_datadir': description['datadir'], 'omero_server_omerodir': description['omerodir'],
        'omero_server_basedir': description['root'], 'omero_backup_omero_command': description['omero_command'],
        'omero_server_system_user': description['omero_user'], 'omero_server_dbhost': postgres['tcp_host'],
        'omero_server_dbport': postgres['port'], 'omero_server_dbname': postgres['dbname'],
        'omero_server_dbuser': postgres['owner'], 'omero_server_dbpassword': postgres['owner_password'],
        'omero_backup_db_login_user': postgres['superuser'], 'omero_backup_db_login_unix_socket': postgres['host'],
        'omero_backup_db_port': postgres['port'], 'omero_backup_store_path': store,
        'omero_backup_status_file': os.path.join(description['root'], 'bench-status', 'status.json'),
    }
    work = tempfile.mkdtemp(prefix='omero-bench-roles-')
    try:
        vars_file = os.path.join(work, 'vars.json')
        fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            json.dump(extra, handle)
        inventory = os.path.join(work, 'inventory.ini')
        with open(inventory, 'w') as handle:
            handle.write('[omero_server]\nlocalhost ansible_connection=local\n[omero_database]\nlocalhost\n[omero_backup_store]\nlocalhost\n')
        env = ansible_env({'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default'})
        started = time.time()
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory, '-e', '@' + vars_file,
                               os.path.join(REPO, 'playbooks', 'backup.yml')], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        elapsed = time.time() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit('backup.yml failed:\n' + proc.stdout[-4000:])
    print('  %-28s %7.2f s' % ('ansible-playbook backup.yml', elapsed))
    return elapsed


def main():
    import omero_sandbox
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--root', default='/var/tmp/omero-bench-roles')
    parser.add_argument('--objects', type=int, default=2000)
    parser.add_argument('--keep', action='store_true')
    args = parser.parse_args()
    if os.path.exists(args.root):
        omero_sandbox.destroy(args.root)
    description = omero_sandbox.build(args.root, objects=args.objects, orphans=10, seed=4)
    try:
        counts = description['counts']
        print('sandbox: %d files, database %d bytes; load %.1f' % (counts['datadir_files'], counts['db_size_bytes'], os.getloadavg()[0]))
        print('raw commands:')
        raw = raw_backup(description, os.path.join(args.root, 'raw'))
        print('  %-28s %7.2f s' % ('sum', raw))
        print('playbook:')
        play = playbook_backup(description, os.path.join(args.root, 'store'))
        overhead = play - raw
        print('overhead %.2f s (goal <= %.0f s), ratio %.2fx; load %.1f'
              % (overhead, GOAL_OVERHEAD_SECONDS, play / raw, os.getloadavg()[0]))
    finally:
        if not args.keep:
            omero_sandbox.destroy(args.root)


if __name__ == '__main__':
    main()
