# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles on the pgBackRest database engine, on one host with a real sandbox cluster and a local, encrypted
pgBackRest repository: the whole story of playbooks/demo.yml (backup, disaster, restore, verify) with
omero_backup_db_engine=pgbackrest. The set record names the backup label, its end and the archived-up-to time and
no dump; the status file and the metrics carry the WAL archive's age; the cluster is restored in place (stopped,
--delta, started) to the set's backup; the rows come back; the configuration file is 0640 and the cipher pass is in
no output. Then a restore of the same set that was not allowed
to replace the cluster is refused with nothing changed.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import stat
import time

from helpers.ansible import REPO_ROOT, failed_results, module_results, run_playbook
from helpers.sandbox import query

CIPHER_PASS = 'pgbackrest-roles-test-cipher-pass'


def table_checksums(description):
    tables = [row[0] for row in query(description, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return dict((table, query(description, 'SELECT count(*), md5(string_agg(t::text, \'|\' ORDER BY t::text)) FROM public."%s" t'
                              % table)[0]) for table in tables)


def pgbackrest_vars(description):
    """The sandbox cluster as the database host's cluster, the repository beside it (one host: no ssh)."""
    root = description['root']
    postgres = description['postgres']
    pg_ctl = [os.path.join(postgres['bindir'], 'pg_ctl'), '-D', postgres['pgdata'], '-w', '-t', '120']
    return {
        'omero_backup_db_engine': 'pgbackrest',
        'omero_backup_pgbackrest_config': os.path.join(root, 'pgbackrest', 'pgbackrest.conf'),
        'omero_backup_pgbackrest_repo_path': os.path.join(root, 'pgbackrest', 'repo'),
        'omero_backup_pgbackrest_pg_path': postgres['pgdata'],
        'omero_backup_pgbackrest_pg_user': postgres['os_user'],
        'omero_backup_pgbackrest_cipher_type': 'aes-256-cbc',
        'omero_backup_pgbackrest_cipher_pass': CIPHER_PASS,
        'omero_backup_pgbackrest_archive_timeout': 10,
        'omero_backup_db_restart_allowed': True,
        'omero_restore_pgbackrest_pg_stop': ['runuser', '-u', postgres['os_user'], '--'] + pg_ctl + ['-m', 'fast', 'stop'],
        'omero_restore_pgbackrest_pg_start': ['runuser', '-u', postgres['os_user'], '--'] + pg_ctl + ['-l', postgres['logfile'], 'start'],
    }


def test_pgbackrest_story(sandbox_factory):
    started = time.time()
    description = sandbox_factory(objects=8, orphans=1, seed=31)
    root = description['root']
    os.makedirs(os.path.join(root, 'pgbackrest'), 0o755)
    before = table_checksums(description)
    extra = dict(pgbackrest_vars(description), omero_demo_sandbox=description, omero_restore_replace=True)

    # 1. The whole story: backup (setup, archiving, stanza, full backup), disaster, restore in place, verify.
    result = run_playbook(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml'), extra_vars=extra)
    story = time.time()
    assert result['rc'] == 0, [(item.get('action'), item.get('msg'), item.get('stderr')) for item in failed_results(result)]
    backup = module_results(result, 'omero.backup.db_dump')[-1]
    assert backup['backup_type'] == 'full' and backup['backup_label'].endswith('F')
    with open(os.path.join(root, 'store', 'sets', 'latest.json')) as handle:
        record = json.load(handle)
    database = record['database']
    assert record['complete'] is True and database['complete'] is True
    assert database['engine'] == 'pgbackrest' and database['backup_label'] == backup['backup_label']
    assert database['archived_until'] and database['backup_time'] and 'path' not in database
    # The first call is the check-mode plan (no duration), the second the restore.
    restored = [item for item in module_results(result, 'omero.backup.db_restore') if 'duration' in item]
    assert [item['restored_from'] for item in restored] == [backup['backup_label']]
    assert restored[0]['target_type'] == 'immediate'
    assert module_results(result, 'omero.backup.verify')[-1]['ok']
    assert table_checksums(description) == before
    assert query(description, 'SELECT pg_is_in_recovery()', dbname='postgres') == [(False,)]
    config = os.stat(extra['omero_backup_pgbackrest_config'])
    assert stat.S_IMODE(config.st_mode) in (0o600, 0o640) and config.st_uid == 0
    assert CIPHER_PASS not in result['stdout']
    # Health in status and metrics: the WAL archive's age from pgBackRest's and PostgreSQL's views.
    with open(os.path.join(root, 'status', 'status.json')) as handle:
        health = json.load(handle)['jobs']['backup']['last_success']['details']['pgbackrest']
    assert health['check_ok'] is True and health['wal_archive_age_seconds'] is not None
    with open(os.path.join(root, 'status', 'omero_backup.prom')) as handle:
        metrics = handle.read()
    assert 'omero_backup_wal_archive_age_seconds{' in metrics and 'source="postgresql"' in metrics
    # The repository is encrypted: its info file is not pgBackRest's plain INI text, and the pass is not in it.
    with open(os.path.join(root, 'pgbackrest', 'repo', 'backup', 'omero', 'backup.info'), 'rb') as handle:
        info = handle.read()
    assert not info.startswith(b'[backrest]') and CIPHER_PASS.encode() not in info

    # 2. The same restore without omero_restore_replace: refused before anything is stopped.
    play = os.path.join(root, 'restore-only.yml')
    with open(os.path.join(REPO_ROOT, 'playbooks', 'demo.yml')) as handle:
        demo = handle.read()
    with open(play, 'w') as handle:
        handle.write(demo[:demo.index('  tasks:\n')] + '  tasks:\n    - name: Restore\n      ansible.builtin.include_role:\n'
                     '        name: omero.backup.restore\n      vars:\n        omero_restore_config: false\n'
                     '        omero_restore_datadir: false\n')
    refused = run_playbook(play, extra_vars=dict(extra, omero_restore_replace=False))
    assert refused['rc'] != 0
    messages = ' '.join(str(item.get('msg')) for item in failed_results(refused))
    assert 'replaces the whole PostgreSQL cluster' in messages and 'Nothing was changed' in messages
    assert query(description, 'SELECT pg_is_in_recovery()', dbname='postgres') == [(False,)]
    print('pgbackrest roles: story %.1f s, refused restore %.1f s' % (story - started, time.time() - story))
