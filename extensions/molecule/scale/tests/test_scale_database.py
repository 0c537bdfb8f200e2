# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database part of the scale scenario: pgBackRest backed the cluster up to the store (the repository host,
encrypted), WAL was archived continuously, and the restore brought the cluster back to a point between t2 and t3."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest


# The roles' defaults, which testinfra's inventory variables do not hold.
DEFAULTS = {'omero_backup_pgbackrest_config': '/etc/pgbackrest/pgbackrest.conf', 'omero_backup_pgbackrest_repo_user': 'pgbackrest',
            'omero_backup_pgbackrest_stanza': 'omero'}


def variables(host):
    return dict(DEFAULTS, **host.ansible.get_variables())


def groups(host):
    return variables(host).get('group_names', [])


def psql(host, dbname, sql):
    result = host.run('runuser -u postgres -- psql -X -A -t -q -d %s -c %s', dbname, sql)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def test_point_in_time_restore_keeps_exactly_the_rows_before_the_target(host):
    if 'omero_database' not in groups(host):
        pytest.skip('not the database host')
    target = host.file(variables(host)['molecule_golden_dir'] + '/pitr-target.txt').content_string.strip()
    assert psql(host, 'pitr', 'SELECT string_agg(label, \',\' ORDER BY label) FROM marks') == 't1,t2'
    assert psql(host, 'pitr', "SELECT max(at) < '%s'::timestamptz FROM marks" % target) == 't'


def test_the_restored_cluster_is_promoted_and_archives_again(host):
    if 'omero_database' not in groups(host):
        pytest.skip('not the database host')
    assert psql(host, 'postgres', 'SELECT pg_is_in_recovery()') == 'f'
    assert psql(host, 'postgres', 'SHOW archive_mode') == 'on'
    assert 'archive-push' in psql(host, 'postgres', 'SHOW archive_command')
    config = host.file(variables(host)['omero_backup_pgbackrest_config'])
    # The database host's file names the repository host and holds no cipher pass (the repository host keeps it).
    assert config.mode == 0o640 and config.user == 'root' and config.group == 'postgres'
    assert 'repo1-host=' in config.content_string
    assert variables(host)['omero_backup_pgbackrest_cipher_pass'] not in config.content_string


def test_store_holds_the_encrypted_repository_and_the_set_names_its_backup(host):
    if 'omero_backup_store' not in groups(host):
        pytest.skip('not the store host')
    vars_ = variables(host)
    user = vars_['omero_backup_pgbackrest_repo_user']
    config = host.file(vars_['omero_backup_pgbackrest_config'])
    assert config.mode == 0o600 and config.user == user
    info = host.run('runuser -u %s -- pgbackrest --config=%s --stanza=%s --output=json info', user, config.path,
                    vars_['omero_backup_pgbackrest_stanza'])
    assert info.rc == 0, info.stderr
    stanza = json.loads(info.stdout)[0]
    assert stanza['status']['code'] == 0
    assert stanza['cipher'] == 'aes-256-cbc'
    labels = [backup['label'] for backup in stanza['backup']]
    latest = json.loads(host.file(vars_['omero_backup_store_path'] + '/sets/latest.json').content_string)
    database = latest['database']
    assert database['engine'] == 'pgbackrest' and database['complete'] is True
    assert database['backup_label'] in labels and database['archived_until']
    assert 'path' not in database and 'sha256' not in database
    # No dump of the database lies on the store.
    assert host.run('find %s -name "*.pg_dump*"', vars_['omero_backup_store_path']).stdout == ''
