# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""db_restore logic that needs no database: finding the dump, verifying it, the role password verifier."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import hashlib
import hmac
import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils import dbdump, dbrestore
from ansible_collections.omero.backup.plugins.module_utils.common import sha256_file
from ansible_collections.omero.backup.plugins.module_utils.dbrestore import DbRestoreError
from ansible_collections.omero.backup.plugins.module_utils.manifest import write_manifest


def _dump(dest, stamp, complete=True, content=b'PGDMP fake archive'):
    path = os.path.join(str(dest), dbdump.dump_name('omero', stamp, 'custom'))
    with open(path, 'wb') as handle:
        handle.write(content)
    record = {'sha256': sha256_file(path), 'database_owner': 'omero', 'omero': {'schema_version': 'OMERO5.4'},
              'files': [{'path': os.path.basename(path), 'size': len(content), 'sha256': sha256_file(path)}]}
    write_manifest(path + '.manifest.json', record, complete=complete)
    return path


def test_directory_source_takes_the_newest_complete_dump(tmp_path):
    older = _dump(tmp_path, '2026-11-20T000000Z')
    _dump(tmp_path, '2026-11-25T000000Z', complete=False)
    path, fmt, manifest = dbrestore.resolve_source(str(tmp_path), 'omero')
    assert (path, fmt, manifest) == (older, 'custom', older + '.manifest.json')


def test_manifest_source_names_its_dump(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z')
    assert dbrestore.resolve_source(dump + '.manifest.json')[0] == dump


def test_directory_without_complete_dump_is_refused(tmp_path):
    _dump(tmp_path, '2026-11-25T000000Z', complete=False)
    with pytest.raises(DbRestoreError, match='no complete dump in .*found 1 dump'):
        dbrestore.resolve_source(str(tmp_path), 'omero')


def test_verified_dump_returns_its_recorded_sha256(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z')
    record, digest = dbrestore.verify_source(dump, 'custom', dump + '.manifest.json', verify=True)
    assert digest == sha256_file(dump) and record['complete'] is True


def test_damaged_dump_is_refused(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z')
    with open(dump, 'r+b') as handle:
        handle.seek(3)
        handle.write(b'X')
    with pytest.raises(DbRestoreError, match='does not match its manifest.*sha256'):
        dbrestore.verify_source(dump, 'custom', dump + '.manifest.json', verify=True)


def test_incomplete_or_missing_manifest_is_refused_unless_verify_false(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z', complete=False)
    with pytest.raises(DbRestoreError, match='does not say complete'):
        dbrestore.verify_source(dump, 'custom', dump + '.manifest.json', verify=True)
    os.unlink(dump + '.manifest.json')
    with pytest.raises(DbRestoreError, match='has no manifest'):
        dbrestore.verify_source(dump, 'custom', None, verify=True)
    record, digest = dbrestore.verify_source(dump, 'custom', None, verify=False)
    assert record == {} and digest == sha256_file(dump)


def test_scram_verifier_matches_rfc7677_construction():
    salt = b'0123456789abcdef'
    verifier = dbrestore.scram_sha256('pencil', salt=salt)
    method, rest = verifier.split('$', 1)
    iterations_salt, keys = rest.split('$')
    iterations, salt_b64 = iterations_salt.split(':')
    stored_b64, server_b64 = keys.split(':')
    assert method == 'SCRAM-SHA-256' and iterations == '4096' and base64.b64decode(salt_b64) == salt
    salted = hashlib.pbkdf2_hmac('sha256', b'pencil', salt, 4096)
    assert base64.b64decode(stored_b64) == hashlib.sha256(hmac.new(salted, b'Client Key', hashlib.sha256).digest()).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    assert 'pencil' not in verifier
