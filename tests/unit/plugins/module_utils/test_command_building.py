# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets reach client tools through the environment, never through argv."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCli

SECRET = 's3cr3t-Pa55'


def _params(**overrides):
    params = dict(login_host='db.example.org', port=5433, login_user='postgres', login_password=SECRET,
                  login_unix_socket=None, connect_timeout=7)
    params.update(overrides)
    return params


def test_libpq_env_carries_the_password_and_target():
    env = postgres.libpq_env(_params(), dbname='omero')
    assert env['PGPASSWORD'] == SECRET
    assert env['PGHOST'] == 'db.example.org'
    assert env['PGPORT'] == '5433'
    assert env['PGDATABASE'] == 'omero'
    assert env['PGCONNECT_TIMEOUT'] == '7'


def test_host_wins_over_socket_directory():
    # One rule for every caller (issue 13): the roles pass both options as configured; a host that is set wins,
    # the socket directory is used when the host is empty.
    env = postgres.libpq_env(_params(login_unix_socket='/run/pg'))
    assert env['PGHOST'] == 'db.example.org'
    assert postgres.server_host(_params(login_unix_socket='/run/pg')) == 'db.example.org'


def test_socket_directory_when_host_is_empty():
    for host in ('', None):
        assert postgres.libpq_env(_params(login_host=host, login_unix_socket='/run/pg'))['PGHOST'] == '/run/pg'
    assert 'PGHOST' not in postgres.libpq_env(_params(login_host='', login_unix_socket=None))


def test_no_password_means_no_pgpassword():
    assert 'PGPASSWORD' not in postgres.libpq_env(_params(login_password=None))


def test_describe_target_never_shows_the_password():
    assert SECRET not in postgres.describe_target(_params(), 'omero')


def test_client_version_parses_pg_dump_output():
    def runner(argv, env=None, data=None, cwd=None):
        assert argv == ['pg_dump', '--version']
        return 0, 'pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n', ''
    assert postgres.client_version(runner) == (15, 18, '15.18')


def test_client_version_failure_is_explained():
    def runner(argv, env=None, data=None, cwd=None):
        return 127, '', 'pg_dump: not found'
    with pytest.raises(postgres.PostgresError) as error:
        postgres.client_version(runner)
    assert 'not found' in str(error.value)


def test_omero_cli_runs_as_the_system_user_with_omerodir(monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    cli = OmeroCli(runner=None, omerodir='/opt/omero/server/OMERO.server', user='root', profile='backup')
    # root is "the same user" here, so no switch: the rule is only "switch when different".
    assert cli.argv('config', 'get')[:1] == ['/opt/omero/server/OMERO.server/bin/omero']
    env = cli.env({'OMERO_PASSWORD': SECRET})
    assert env['OMERODIR'] == '/opt/omero/server/OMERO.server'
    assert env['OMERO_CONFIG'] == 'backup'
    assert SECRET not in cli.argv('admin', 'cleanse', '/OMERO')


def test_omero_cli_switches_user_when_root(monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    cli = OmeroCli(runner=None, omerodir='/srv/omero', omero_command='/srv/venv/bin/omero', user='nobody')
    assert cli.argv('version') == ['runuser', '-u', 'nobody', '--', '/srv/venv/bin/omero', 'version']


def test_omero_cli_unknown_user_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    cli = OmeroCli(runner=None, omerodir='/srv/omero', user='no-such-omero-user')
    with pytest.raises(Exception) as error:
        cli.argv('version')
    assert 'no-such-omero-user' in str(error.value)
