# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sandbox generator: its description matches the disk and the database, and bad input leaves nothing."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import importlib
import json
import os
import pwd
import socket
import stat
import subprocess
import sys

import psycopg2
import pytest

import omero_sandbox
from omero_sandbox.idpath import id_to_relpath
from helpers.ansible import VENV_BIN, collections_path
from helpers.sandbox import psycopg2_connect, query

TOOLS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'tools')
ID_TABLES = {'Pixels': 'pixels', 'Files': 'originalfile', 'Thumbnails': 'thumbnail'}


def collection_idpath():
    """The collection's own id<->path module, to cross-check it against what the sandbox laid out."""
    path = collections_path()
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module('ansible_collections.omero.backup.plugins.module_utils.tools.idpath')


def walk_files(top):
    """Data-dir relative paths of every non-directory entry (files and symlinks)."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), top))
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                found.add(os.path.relpath(os.path.join(dirpath, name), top))
    return found


def sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def ids_in(description, table):
    return set(row[0] for row in query(description, 'SELECT id FROM %s' % table))


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=TOOLS_DIR)
    return subprocess.run([sys.executable, '-m', 'omero_sandbox'] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)


def port_is_listening(port):
    probe = socket.socket()
    try:
        return probe.connect_ex(('127.0.0.1', port)) == 0
    finally:
        probe.close()


# --- what a built sandbox holds ------------------------------------------------------------------

def test_checksums_describe_every_data_dir_file(sandbox):
    datadir = sandbox['datadir']
    on_disk = walk_files(datadir)
    described = set(sandbox['checksums']) | set(sandbox['symlinks'])
    assert on_disk == described
    for relpath, digest in sandbox['checksums'].items():
        assert sha256(os.path.join(datadir, relpath)) == digest, relpath
    for relpath, target in sandbox['symlinks'].items():
        assert os.path.islink(os.path.join(datadir, relpath))
        assert os.readlink(os.path.join(datadir, relpath)) == target
        assert not target.startswith(datadir + '/'), 'an in-place import points outside the data dir'
    assert sandbox['counts']['datadir_files'] == len(described)


def test_layout_has_every_top_level_directory(sandbox):
    datadir = sandbox['datadir']
    for name in ('Files', 'Pixels', 'Thumbnails', 'ManagedRepository', 'FullText', 'BioFormatsCache', 'backup'):
        assert os.path.isdir(os.path.join(datadir, name)), name
    assert os.listdir(os.path.join(datadir, 'backup')) == []
    assert any(name.endswith('.bfmemo') for name in os.listdir(os.path.dirname(
        os.path.join(datadir, [p for p in sandbox['checksums'] if p.endswith('.bfmemo')][0]))))
    assert os.listdir(os.path.join(datadir, 'FullText'))


def test_every_id_named_file_follows_the_id_rule_and_has_a_row_unless_orphan(sandbox):
    idpath = collection_idpath()
    orphans = set(sandbox['orphans'])
    kept = set(sandbox['kept_unknown'])
    rows = dict((top, ids_in(sandbox, table)) for top, table in ID_TABLES.items())
    checked = 0
    for relpath in sandbox['checksums']:
        top = relpath.split('/', 1)[0]
        if top not in ID_TABLES:
            continue
        object_id = idpath.entry_id(os.path.basename(relpath))
        if relpath in kept:
            assert object_id is None, relpath
            continue
        assert object_id is not None, relpath
        # the sandbox's rule and the collection's agree on where the id lives
        assert os.path.dirname(relpath) == os.path.dirname(top + '/' + id_to_relpath(object_id))
        assert idpath.id_to_relpath(object_id) == id_to_relpath(object_id)
        assert (object_id in rows[top]) == (relpath not in orphans), relpath
        checked += 1
    assert checked >= sandbox['counts']['pixels'] + sandbox['counts']['thumbnails'] + sandbox['counts']['files']


def test_rows_and_files_span_every_id_band(sandbox):
    bands = {'1..999': lambda i: i < 1000, '1000..999000': lambda i: 1000 <= i <= 999000,
             '999001..999999': lambda i: 999001 <= i <= 999999, '>=1000000': lambda i: i >= 1000000}
    for top, table in ID_TABLES.items():
        with_files = set(int(os.path.basename(p)) for p in sandbox['checksums']
                         if p.startswith(top + '/') and os.path.basename(p).isdigit() and p not in sandbox['orphans'])
        for band, inside in bands.items():
            assert any(inside(i) for i in with_files), '%s has no file with an id in %s' % (top, band)
    orphan_ids = [int(''.join(c for c in os.path.basename(p).split('_')[0] if c.isdigit())) for p in sandbox['orphans']]
    for band in ('1..999', '999001..999999', '>=1000000'):
        assert any(bands[band](i) for i in orphan_ids), 'no orphan in %s' % band


def test_orphans_cover_every_name_form_cleanse_knows(sandbox):
    idpath = collection_idpath()
    names = [os.path.basename(p) for p in sandbox['orphans']]
    assert any(n.isdigit() for n in names)
    assert any(n.endswith('_pyramid') for n in names)
    assert any(n.endswith('_pyramid.pyr_lock') for n in names)
    assert any(n.startswith('.') and n.endswith('.tmp') for n in names)
    assert set(p.split('/')[0] for p in sandbox['orphans']) == set(ID_TABLES)
    for relpath in sandbox['orphans']:
        object_id = idpath.entry_id(os.path.basename(relpath))
        table = ID_TABLES[relpath.split('/')[0]]
        assert not query(sandbox, 'SELECT 1 FROM %s WHERE id = %%s' % table, (object_id,)), relpath
    for relpath in sandbox['kept_unknown']:
        assert os.path.isfile(os.path.join(sandbox['datadir'], relpath))
    assert len(sandbox['orphans']) == sandbox['counts']['orphans'] == 12


def test_managed_repository_rows_match_files(sandbox):
    datadir = sandbox['datadir']
    managed = sandbox['repositories']['managed']
    rows = query(sandbox, 'SELECT id, path, name, mimetype, size, hash FROM originalfile WHERE repo = %s', (managed,))
    files = dirs = logs = 0
    for object_id, path, name, mimetype, size, digest in rows:
        assert path == '' or path.endswith('/'), (object_id, path)
        full = os.path.join(datadir, 'ManagedRepository', path + name)
        if mimetype == 'Directory':
            assert os.path.isdir(full), full
            dirs += 1
            continue
        with open(full, 'rb') as handle:
            data = handle.read()
        assert len(data) == size and hashlib.sha1(data).hexdigest() == digest, full
        files += 1
        logs += name.endswith('.log') and mimetype == 'text/plain'
    counts = sandbox['counts']
    assert (files, dirs, logs) == (counts['managed_files'] + counts['import_logs'], counts['managed_dirs'], counts['import_logs'])
    repository = query(sandbox, "SELECT name, hash, repo FROM originalfile WHERE mimetype = 'Repository' ORDER BY id")
    assert ('ManagedRepository', managed, None) in repository


def test_repository_markers_tie_data_dir_to_database(sandbox):
    datadir = sandbox['datadir']
    db_uuid = query(sandbox, "SELECT value FROM configuration WHERE name = 'omero.db.uuid'")[0][0]
    assert db_uuid == sandbox['db_uuid']
    for base, expected in ((datadir, sandbox['repositories']['datadir']),
                           (os.path.join(datadir, 'ManagedRepository'), sandbox['repositories']['managed'])):
        with open(os.path.join(base, '.omero', 'repository', db_uuid, 'repo_uuid')) as handle:
            assert handle.read().strip() == expected
    hashes = set(row[0] for row in query(sandbox, "SELECT hash FROM originalfile WHERE mimetype = 'Repository'"))
    assert hashes == set(sandbox['repositories'].values())


def test_database_is_omero_shaped(sandbox):
    assert query(sandbox, 'SELECT currentversion, currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1') == [('OMERO5.4', 0)]
    owner, encoding = query(sandbox, "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database "
                                     "WHERE datname = 'omero'")[0]
    assert (owner, encoding) == ('omero', 'UTF8')
    assert query(sandbox, "SELECT rolsuper FROM pg_roles WHERE rolname = 'omero'") == [(False,)]
    tables = dict(query(sandbox, "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
    for table in ('dbpatch', 'configuration', 'experimenter', 'event', 'eventlog', 'session', 'originalfile', 'pixels', 'thumbnail'):
        assert tables.get(table) == 'omero', table
    assert query(sandbox, 'SELECT count(*) FROM session WHERE uuid IS NOT NULL')[0][0] >= 1
    counts = sandbox['counts']['db_rows']
    for table, count in counts.items():
        assert query(sandbox, 'SELECT count(*) FROM %s' % table)[0][0] == count, table
    for table in ('originalfile', 'pixels', 'thumbnail'):
        next_id = query(sandbox, 'SELECT nextval(%s)', ('seq_' + table,))[0][0]
        assert next_id > max(ids_in(sandbox, table))


def test_repo_triggers_reject_rows_without_the_secret(sandbox):
    managed = sandbox['repositories']['managed']
    conn = psycopg2_connect(sandbox, role='owner')
    try:
        with conn.cursor() as cursor:
            with pytest.raises(psycopg2.Error, match='only the server may set repo'):
                cursor.execute("INSERT INTO originalfile (id, permissions, name, path, repo, creation_id, group_id, owner_id, update_id) "
                               "VALUES (5000000, -52, 'x', 'a/', %s, 1, 3, 2, 1)", (managed,))
        conn.rollback()
        with conn.cursor() as cursor:
            with pytest.raises(psycopg2.Error, match='only the server may change repo'):
                cursor.execute("UPDATE originalfile SET repo = NULL WHERE repo = %s", (managed,))
        conn.rollback()
        with conn.cursor() as cursor:
            cursor.execute('SET LOCAL omero.repo_secret = %s', (sandbox['postgres']['repo_secret'],))
            cursor.execute("INSERT INTO originalfile (id, permissions, name, path, repo, creation_id, group_id, owner_id, update_id) "
                           "VALUES (5000000, -52, 'x', 'a/', %s, 1, 3, 2, 1)", (managed,))
        conn.rollback()
    finally:
        conn.close()


def test_passwords_work_over_tcp_and_only_the_right_ones(sandbox):
    postgres = sandbox['postgres']
    for user, password in ((postgres['superuser'], postgres['superuser_password']), (postgres['owner'], postgres['owner_password'])):
        conn = psycopg2.connect(host='127.0.0.1', port=postgres['port'], user=user, password=password, dbname='omero')
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match='password authentication failed'):
            psycopg2.connect(host='127.0.0.1', port=postgres['port'], user=user, password=password + 'x', dbname='omero')


def test_ownership_and_modes(sandbox):
    def owner(path):
        return pwd.getpwuid(os.lstat(path).st_uid).pw_name

    expected = 'omero-server' if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert sandbox['omero_user'] == expected
    for path in (sandbox['datadir'], os.path.join(sandbox['datadir'], sorted(sandbox['checksums'])[0]), sandbox['omerodir'],
                 sandbox['omero_config'], sandbox['config_dir']):
        assert owner(path) == expected, path
    assert owner(sandbox['postgres']['pgdata']) == sandbox['postgres']['os_user']
    assert stat.S_IMODE(os.stat(os.path.join(sandbox['root'], 'sandbox.json')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sandbox['root']).st_mode) == 0o755


def test_omerodir_config_written_by_the_real_cli(sandbox):
    omero = sandbox['omero_command']
    assert os.path.islink(omero)
    env = {'OMERODIR': sandbox['omerodir'], 'HOME': '/tmp', 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'}
    argv = [omero, 'config', 'get']
    if os.geteuid() == 0:
        argv = ['/usr/sbin/runuser', '-u', sandbox['omero_user'], '--'] + argv
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=True)
    config = dict(line.split('=', 1) for line in proc.stdout.splitlines() if '=' in line)
    postgres = sandbox['postgres']
    assert config['omero.db.name'] == 'omero'
    assert config['omero.db.user'] == 'omero'
    assert config['omero.db.host'] == '127.0.0.1'
    assert config['omero.db.port'] == str(postgres['port'])
    assert config['omero.db.pass'] == '********'  # masked without --show-password
    assert config['omero.data.dir'] == sandbox['datadir']
    assert config['omero.jvmcfg.percent.blitz'] == '50'  # from the role-managed config dir
    with open(sandbox['omero_config']) as handle:
        assert postgres['owner_password'] in handle.read()
    with open(os.path.join(sandbox['config_dir'], '00-sandbox.omero')) as handle:
        assert 'config set' in handle.read()


def test_omerodir_descriptors_scripts_and_logs(sandbox):
    omerodir = sandbox['omerodir']
    for relpath in ('etc/grid/default.xml', 'etc/templates/grid/default.xml', 'etc/templates/grid/windefault.xml'):
        with open(os.path.join(omerodir, relpath)) as handle:
            assert '<variable name="OMERO_LOGS" value="var/log/"/>' in handle.read(), relpath
    scripts = [f for _d, _s, files in os.walk(os.path.join(omerodir, 'lib', 'scripts', 'omero')) for f in files]
    assert len([f for f in scripts if f.endswith('.py')]) >= 3
    logdir = sandbox['log_dir']
    for name in sandbox['logs']:
        assert os.path.getsize(os.path.join(logdir, name)) > 0, name
    rotated = ['Blitz-0.log.1', 'Blitz-0.log.2', 'Blitz-0.log.3']
    mtimes = [os.stat(os.path.join(logdir, name)).st_mtime for name in ['Blitz-0.log'] + rotated]
    assert mtimes == sorted(mtimes, reverse=True) and len(set(mtimes)) == 4
    assert os.path.exists(os.path.join(logdir, 'Indexer-0.log.1'))
    assert not any(name.startswith('master.') and name[-1].isdigit() for name in os.listdir(logdir))


def test_describe_returns_the_saved_description(sandbox):
    assert omero_sandbox.describe(sandbox['root']) == json.loads(json.dumps(sandbox))
    proc = run_cli('describe', sandbox['root'])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['db_uuid'] == sandbox['db_uuid']


# --- determinism, knobs, life cycle ------------------------------------------------------------------

def test_same_seed_same_sandbox_with_or_without_the_cli(sandbox_factory):
    first = sandbox_factory(objects=40, orphans=6, seed=7)
    second = sandbox_factory(objects=40, orphans=6, seed=7, omero_cli=False)
    other = sandbox_factory(objects=40, orphans=6, seed=8, omero_cli=False)
    assert first['checksums'] == second['checksums']
    assert first['db_uuid'] == second['db_uuid'] and first['orphans'] == second['orphans']
    assert first['checksums'] != other['checksums'] and first['db_uuid'] != other['db_uuid']
    assert first['postgres']['owner_password'] != second['postgres']['owner_password']

    # the hand-written config.xml reads back like the CLI's
    def comparable(description):
        with open(description['omero_config']) as handle:
            text = handle.read().split('-->', 1)[1]  # after the generated-at comment
        postgres = description['postgres']
        return text.replace(postgres['owner_password'], 'PW').replace(str(postgres['port']), 'PORT').replace(description['root'], 'ROOT')

    assert comparable(first) == comparable(second)


def test_stop_start_and_destroy(sandbox_factory):
    description = sandbox_factory(objects=20, orphans=0)
    port = description['postgres']['port']
    root = description['root']
    assert port_is_listening(port)
    proc = run_cli('stop', root)
    assert proc.returncode == 0, proc.stderr
    assert not port_is_listening(port)
    omero_sandbox.start(root)
    assert query(description, 'SELECT 1') == [(1,)]
    proc = run_cli('destroy', root)
    assert proc.returncode == 0, proc.stderr
    assert not os.path.exists(root) and not port_is_listening(port)


def test_cli_build_prints_the_description(tmp_path):
    root = str(tmp_path / 'cli')
    proc = run_cli('build', root, '--objects', '20', '--orphans', '3', '--seed', '4', '--no-omero-cli', '--quiet')
    try:
        assert proc.returncode == 0, proc.stderr
        description = json.loads(proc.stdout)
        assert description['root'] == root and description['counts']['orphans'] == 3
    finally:
        omero_sandbox.destroy(root)


def test_db_size_padding_grows_eventlog(sandbox_factory):
    description = sandbox_factory(objects=20, orphans=0, db_size_mb=40, omero_cli=False)
    assert description['counts']['db_size_bytes'] >= 40 * 2 ** 20
    assert description['counts']['db_rows']['eventlog'] > 100000


# --- bad input leaves nothing behind ---------------------------------------------------------------

def test_unknown_knob_is_a_clear_error(tmp_path):
    root = str(tmp_path / 'nothing')
    with pytest.raises(TypeError, match='colour'):
        omero_sandbox.build(root, colour='blue')
    proc = run_cli('build', root, '--colour', 'blue')
    assert proc.returncode == 2 and 'unrecognized arguments: --colour' in proc.stderr
    assert not os.path.exists(root)


@pytest.mark.parametrize('knobs, message', [
    ({'objects': 0}, 'objects must be >= 1'),
    ({'orphans': -1}, 'orphans must be >= 0'),
    ({'objects': '10'}, 'objects must be an integer'),
    ({'port': 70000}, 'port must be <= 65535'),
])
def test_invalid_knob_values(tmp_path, knobs, message):
    root = str(tmp_path / 'nothing')
    with pytest.raises(omero_sandbox.SandboxError, match=message):
        omero_sandbox.build(root, **knobs)
    assert not os.path.exists(root)


def test_port_in_use_is_refused_before_initdb(tmp_path, free_port):
    root = str(tmp_path / 'busy')
    listener = socket.socket()
    listener.bind(('127.0.0.1', free_port))
    listener.listen(1)
    try:
        with pytest.raises(omero_sandbox.SandboxError, match='port %d on 127.0.0.1 is already in use' % free_port):
            omero_sandbox.build(root, port=free_port)
        proc = run_cli('build', root, '--port', str(free_port))
        assert proc.returncode == 1 and 'already in use' in proc.stderr
    finally:
        listener.close()
    assert not os.path.exists(root)


def test_not_enough_disk_is_refused_up_front(tmp_path):
    root = str(tmp_path / 'huge')
    with pytest.raises(omero_sandbox.SandboxError, match='not enough disk space'):
        omero_sandbox.build(root, db_size_mb=10 ** 9)
    assert not os.path.exists(root)


def test_non_empty_root_is_refused_and_left_alone(tmp_path):
    (tmp_path / 'precious.txt').write_text('keep me')
    with pytest.raises(omero_sandbox.SandboxError, match='not an empty directory'):
        omero_sandbox.build(str(tmp_path))
    assert os.listdir(str(tmp_path)) == ['precious.txt']


def test_failure_mid_build_stops_the_cluster_and_removes_everything(tmp_path, free_port):
    """A broken omero CLI fails the build after PostgreSQL started: nothing may survive."""
    venv = tmp_path / 'broken-venv'
    (venv / 'bin').mkdir(parents=True)
    fake = venv / 'bin' / 'omero'
    fake.write_text('#!/bin/sh\necho "omero: simulated failure" >&2\nexit 3\n')
    fake.chmod(0o755)
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(venv), 0o755)
    os.chmod(str(venv / 'bin'), 0o755)
    root = str(tmp_path / 'half')
    with pytest.raises(omero_sandbox.SandboxError, match='simulated failure'):
        omero_sandbox.build(root, objects=20, port=free_port, venv=str(venv))
    assert not os.path.exists(root)
    assert not port_is_listening(free_port)
    ps = subprocess.run(['ps', '-eo', 'args'], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    assert os.path.join(root, 'pgdata') not in ps


def test_existing_empty_root_is_kept_after_a_failure(tmp_path, free_port):
    listener = socket.socket()
    listener.bind(('127.0.0.1', free_port))
    listener.listen(1)
    try:
        with pytest.raises(omero_sandbox.SandboxError):
            omero_sandbox.build(str(tmp_path), port=free_port)
    finally:
        listener.close()
    assert os.path.isdir(str(tmp_path)) and os.listdir(str(tmp_path)) == []


def test_destroy_refuses_a_directory_it_did_not_build(tmp_path):
    (tmp_path / 'data').write_text('x')
    with pytest.raises(omero_sandbox.SandboxError, match='marker'):
        omero_sandbox.destroy(str(tmp_path))
    assert (tmp_path / 'data').exists()


def test_venv_has_the_cli_the_harness_uses():
    assert os.access(os.path.join(VENV_BIN, 'ansible-playbook'), os.X_OK)
