# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""db_restore rules that need no database: the names of temporary and replaced databases and how leftovers are told
apart, the archive header, expected_sha256, the readability proof and the free-space rule."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils.engines import pg_dump_files, pg_dump_sql, pg_restore
from ansible_collections.omero.backup.plugins.module_utils import dumps
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.base.runner import sha256_file
from ansible_collections.omero.backup.plugins.module_utils.db_restore import DbRestoreError
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import write_manifest

HEADER_15 = b'PGDMP\x01\x0e\x00\x04\x08\x01\x01'


def _archive(directory, name='omero.2026-11-20T000000Z.pg_dump', header=HEADER_15, manifest=True, **record):
    path = os.path.join(str(directory), name)
    with open(path, 'wb') as handle:
        handle.write(header + b'rest of a custom-format archive')
    if manifest:
        base = {'sha256': sha256_file(path), 'database_owner': 'omero', 'postgres': {'client_version': '15.18'},
                'files': [{'path': name, 'size': os.path.getsize(path), 'sha256': sha256_file(path)}]}
        base.update(record)
        write_manifest(path + '.manifest.json', base, complete=True)
    return path


# ------------------------------------------------------------------ names

@pytest.mark.parametrize('db', ['omero', 'o' * 63, u'\u00e9' * 40, 'my db "quoted"'])
def test_side_names_fit_postgresql_names_and_are_recognised_only_with_their_comment(db):
    temporary = pg_dump_sql.temporary_name(db)
    replaced = pg_dump_sql.replaced_name(db)
    for name in (temporary, replaced):
        assert len(name.encode('utf-8')) <= 63
        name.encode('utf-8').decode('utf-8')  # cut at a character boundary
    assert pg_dump_sql.NEW_INFIX in temporary and pg_dump_sql.OLD_INFIX in replaced
    assert temporary != pg_dump_sql.temporary_name(db)

    temporary_comment = (pg_dump_sql.COMMENT_IN_PROGRESS % ('2026-11-20T00:00:00Z', 'omero.pg_dump', 'a' * 64)
                         + pg_dump_sql.COMMENT_TEMPORARY % db)
    drop_pending = pg_dump_sql.COMMENT_REPLACED % (db, pg_dump_sql.REPLACED_DROP, 'now', 'omero.pg_dump', 'a' * 64)
    kept = pg_dump_sql.COMMENT_REPLACED % (db, pg_dump_sql.REPLACED_KEPT, 'now', 'omero.pg_dump', 'a' * 64)
    assert pg_dump_sql.leftover_kind(db, temporary, temporary_comment) == 'temporary'
    assert pg_dump_sql.leftover_kind(db, replaced, drop_pending) == 'replaced'
    # A replaced database kept on purpose, a look-alike name without the comment, another database's leftover.
    assert pg_dump_sql.leftover_kind(db, replaced, kept) is None
    assert pg_dump_sql.leftover_kind(db, temporary, None) is None
    assert pg_dump_sql.leftover_kind(db, temporary, 'omero.backup restored sha256=%s from x at y' % ('a' * 64)) is None
    assert pg_dump_sql.leftover_kind(db + 'x', temporary, temporary_comment) is None
    assert pg_dump_sql.leftover_kind(db, db, temporary_comment) is None
    assert pg_dump_sql.leftover_kind(db, temporary + '\n', temporary_comment) is None


# ------------------------------------------------------------------ archive header and readability

def test_archive_version_is_read_from_the_header_of_either_format(tmp_path):
    custom = _archive(tmp_path)
    assert postgres.archive_version(custom, 'custom') == (1, 14, 0)
    directory = tmp_path / 'omero.pg_dump.d'
    directory.mkdir()
    (directory / 'toc.dat').write_bytes(b'PGDMP\x01\x10\x00' + b'...')
    assert postgres.archive_version(str(directory), 'directory') == (1, 16, 0)
    (tmp_path / 'plain.sql').write_text('-- not an archive\n')
    assert postgres.archive_version(str(tmp_path / 'plain.sql'), 'custom') is None
    assert postgres.archive_version(str(tmp_path / 'missing'), 'custom') is None


def _fake_pg_restore(version='15.18', list_rc=0, list_err=''):
    calls = []

    def runner(argv, env=None, data=None, cwd=None):
        calls.append(argv)
        if argv[1:] == ['--version']:
            return 0, 'pg_restore (PostgreSQL) %s (Debian)\n' % version, ''
        return list_rc, '', list_err
    return runner, calls


def test_a_dump_of_a_newer_pg_dump_is_refused_before_pg_restore_reads_it(tmp_path):
    path = _archive(tmp_path, header=b'PGDMP\x01\x10\x00')
    runner, calls = _fake_pg_restore()
    with pytest.raises(DbRestoreError, match=r'pg_dump 17\.2 \(archive version 1\.16\.0\), newer than this pg_restore 15\.18.*'
                                             r'PostgreSQL 17 client tools.*Nothing was changed'):
        pg_restore.prove_readable({}, runner, path, 'custom', {'postgres': {'client_version': '17.2'}})
    assert calls == [['pg_restore', '--version']]


def test_pg_restore_list_must_read_the_dump(tmp_path):
    path = _archive(tmp_path)
    runner, calls = _fake_pg_restore(list_rc=1, list_err='pg_restore: error: unsupported version (1.16) in file header')
    with pytest.raises(DbRestoreError, match=r'pg_restore 15\.18 cannot read .*unsupported version.*Nothing was changed'):
        pg_restore.prove_readable({'pg_bindir': '/opt/pg/bin'}, runner, path, 'custom', {})
    assert calls[-1] == ['/opt/pg/bin/pg_restore', '--list', '-F', 'c', path]
    runner, calls = _fake_pg_restore()
    facts = pg_restore.prove_readable({}, runner, path, 'custom', {'postgres': {'client_version': '15.18'}})
    assert facts == {'pg_restore_version': '15.18', 'archive_version': '1.14.0'}


# ------------------------------------------------------------------ expected_sha256

def test_expected_sha256_is_checked_on_the_dump_bytes_whatever_the_manifest_says(tmp_path):
    genuine = _archive(tmp_path)
    digest = sha256_file(genuine)
    record, actual = pg_dump_files.verify_source(genuine, 'custom', genuine + '.manifest.json', True, digest.upper())
    assert actual == digest and record['database_owner'] == 'omero'
    # Swapped content with a manifest rewritten to match it: the manifest check alone would pass.
    with open(genuine, 'ab') as handle:
        handle.write(b'appended by someone else')
    swapped_digest = sha256_file(genuine)
    write_manifest(genuine + '.manifest.json', {'sha256': swapped_digest, 'files': [
        {'path': os.path.basename(genuine), 'size': os.path.getsize(genuine), 'sha256': swapped_digest}]}, complete=True)
    assert pg_dump_files.verify_source(genuine, 'custom', genuine + '.manifest.json', True)[1] == swapped_digest
    with pytest.raises(DbRestoreError, match='not the expected_sha256 %s .*Nothing was changed' % digest):
        pg_dump_files.verify_source(genuine, 'custom', genuine + '.manifest.json', True, digest)
    with pytest.raises(DbRestoreError, match='64 hexadecimal digits'):
        pg_dump_files.verify_source(genuine, 'custom', None, True, 'abc')


def test_expected_sha256_needs_no_manifest_but_refuses_one_naming_another_dump(tmp_path):
    path = _archive(tmp_path, manifest=False)
    digest = sha256_file(path)
    assert pg_dump_files.verify_source(path, 'custom', None, True, digest) == ({}, digest)
    write_manifest(path + '.manifest.json', {'sha256': 'b' * 64, 'files': []}, complete=False)
    with pytest.raises(DbRestoreError, match='describes another dump'):
        pg_dump_files.verify_source(path, 'custom', path + '.manifest.json', True, digest)


def test_expected_sha256_of_a_directory_dump_is_the_tree_digest_db_dump_records(tmp_path):
    directory = tmp_path / 'omero.2026-11-20T000000Z.pg_dump.d'
    directory.mkdir()
    (directory / 'toc.dat').write_bytes(HEADER_15)
    (directory / '3001.dat.gz').write_bytes(b'data')
    entries = [{'path': rel, 'sha256': sha256_file(str(directory / rel))} for rel in ('toc.dat', '3001.dat.gz')]
    digest = dumps.tree_digest(entries)
    assert pg_dump_files.verify_source(str(directory), 'directory', None, True, digest)[1] == digest
    (directory / 'extra.dat').write_bytes(b'planted')
    with pytest.raises(DbRestoreError, match='not the expected_sha256'):
        pg_dump_files.verify_source(str(directory), 'directory', None, True, digest)


# ------------------------------------------------------------------ room for both databases

def _space(free, estimate_from='manifest', old=1000):
    return {'old_database_bytes': old, 'restore_bytes_estimate': 5000, 'estimate_from': estimate_from,
            'peak_bytes': old + 5000, 'tablespace': 'pg_default', 'path': '/var/lib/postgresql/15/main',
            'free_bytes': free, 'checked': free is not None}


def test_too_little_room_is_refused_on_the_manifest_estimate_and_warned_on_a_rough_one():
    result = {'warnings': []}
    pg_restore.check_space(_space(5000), result)
    pg_restore.check_space(_space(None), result)
    assert result['warnings'] == []
    with pytest.raises(DbRestoreError, match=r'needs about 5000 bytes in tablespace pg_default .*only 4999 are free.*'
                                             r'replaces \(1000 bytes\) is kept until the new one is complete.*Nothing was changed'):
        pg_restore.check_space(_space(4999), result)
    pg_restore.check_space(_space(10, estimate_from='dump_size', old=0), result)
    assert len(result['warnings']) == 1 and 'rough guess' in result['warnings'][0]
