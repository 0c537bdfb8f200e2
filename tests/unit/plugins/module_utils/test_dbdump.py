# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""db_dump logic that needs no database: names, compression, validation and retention."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import time

import pytest

from ansible_collections.omero.backup.plugins.module_utils import db_dump
from ansible_collections.omero.backup.plugins.module_utils import dumps as store
from ansible_collections.omero.backup.plugins.module_utils.base.atomic import TEMP_PREFIX
from ansible_collections.omero.backup.plugins.module_utils.db_dump import DbDumpError
from ansible_collections.omero.backup.plugins.module_utils.engines import pg_dump_files
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump import PgDumpEngine
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres


def _params(**overrides):
    params = dict(db='omero', dest='/backup', format='custom', jobs=1, compress=None, globals=True, min_size=4096,
                  server_stopped=False, skip_if_newer_than=None, min_keep=1, keep=None, max_age=None, owner=None,
                  group=None, pg_bindir=None, login_password='s3cret')
    params.update(overrides)
    return params


def test_dump_names_round_trip():
    assert store.dump_name('omero', '2026-11-26T083000Z', 'custom') == 'omero.2026-11-26T083000Z.pg_dump'
    assert store.parse_dump_name('omero.2026-11-26T083000Z.pg_dump.d') == ('omero', '2026-11-26T083000Z', 'directory')
    assert store.parse_dump_name('my.db.2026-11-26T083000Z.pg_dump') == ('my.db', '2026-11-26T083000Z', 'custom')
    for other in ('omero.2026-11-26T083000Z.roles.sql', 'omero.2026-11-26T083000Z.pg_dump.manifest.json',
                  TEMP_PREFIX + 'omero.2026-11-26T083000Z.pg_dump.abc', 'omero.pg_dump'):
        assert store.parse_dump_name(other) is None


@pytest.mark.parametrize('compress, major, expected', [
    (None, 15, None), ('6', 15, '6'), ('gzip:9', 15, '9'), ('gzip', 15, '6'), ('none', 15, '0'),
    ('zstd', 16, 'zstd'), ('zstd:5', 17, 'zstd:5'), ('lz4', 16, 'lz4'), ('none', 16, 'none'), ('gzip:3', 16, 'gzip:3'),
])
def test_compress_argument(compress, major, expected):
    assert pg_dump_files.compress_argument(compress, major) == expected


@pytest.mark.parametrize('compress', ['zstd', 'lz4:3'])
def test_zstd_and_lz4_refused_on_a_15_client(compress):
    with pytest.raises(DbDumpError, match='needs a PostgreSQL 16 or newer pg_dump; this client is 15'):
        pg_dump_files.compress_argument(compress, 15)


@pytest.mark.parametrize('compress', ['brotli', 'gzip:12', 'zstd:fast'])
def test_bad_compress_values(compress):
    with pytest.raises(DbDumpError):
        pg_dump_files.compress_argument(compress, 16)


@pytest.mark.parametrize('overrides, message', [
    (dict(jobs=2), 'needs format=directory'),
    (dict(jobs=0, format='directory'), 'jobs must be 1 or more'),
    (dict(min_keep=0), 'min_keep must be 1 or more'),
    (dict(min_keep=3, keep=2), 'keep \\(2\\) is smaller than min_keep \\(3\\)'),
    (dict(max_age='soon'), 'cannot read duration'),
    (dict(dest='relative/dir'), 'absolute path'),
])
def test_validate_refuses_bad_input(overrides, message):
    with pytest.raises(Exception, match=message):
        db_dump.validate(_params(**overrides))


def test_scrub_hides_the_password():
    assert 's3cret' not in postgres.scrub('FATAL: password s3cret rejected', _params())


def _stamp(days_ago, now):
    return time.strftime(store.STAMP_FORMAT, time.gmtime(now - days_ago * 86400))


def _fake_dump(dest, stamp, complete=True, fmt='custom', db='omero'):
    path = os.path.join(str(dest), store.dump_name(db, stamp, fmt))
    if fmt == 'directory':
        os.mkdir(path)
        with open(os.path.join(path, 'toc.dat'), 'w') as handle:
            handle.write('x')
    else:
        with open(path, 'w') as handle:
            handle.write('x')
    with open(os.path.join(str(dest), store.roles_name(db, stamp)), 'w') as handle:
        handle.write('roles')
    if complete is not None:
        with open(path + '.manifest.json', 'w') as handle:
            json.dump({'complete': complete, 'finished_epoch': store.stamp_epoch(stamp)}, handle)
    return path


def test_retention_keeps_min_keep_and_drops_old_and_surplus(tmp_path):
    now = time.time()
    paths = [_fake_dump(tmp_path, _stamp(days, now)) for days in (0, 1, 2, 3, 40)]
    dumps = store.list_dumps(str(tmp_path), 'omero')
    assert [item['path'] for item in dumps] == paths
    drop, leftovers = store.plan_retention(dumps, min_keep=2, keep=4, max_age=30 * 86400, now=now)
    assert [item['path'] for item in drop] == [paths[4]]
    assert leftovers == []
    drop, leftovers = store.plan_retention(dumps, min_keep=2, keep=2, now=now)
    assert [item['path'] for item in drop] == paths[2:]
    drop, leftovers = store.plan_retention(dumps, min_keep=1, max_age=0.5 * 86400, now=now)
    assert [item['path'] for item in drop] == paths[1:]


def test_retention_never_removes_the_last_complete_dump(tmp_path):
    now = time.time()
    only = _fake_dump(tmp_path, _stamp(400, now))
    drop, leftovers = store.plan_retention(store.list_dumps(str(tmp_path)), min_keep=0, keep=0, max_age=1, now=now)
    assert drop == [] and leftovers == []
    assert os.path.exists(only)


def test_incomplete_dumps_are_leftovers_only_when_older_than_the_newest_complete(tmp_path):
    now = time.time()
    old_incomplete = _fake_dump(tmp_path, _stamp(3, now), complete=False, fmt='directory')
    no_manifest = _fake_dump(tmp_path, _stamp(2, now), complete=None)
    complete = _fake_dump(tmp_path, _stamp(1, now))
    newer_incomplete = _fake_dump(tmp_path, _stamp(0, now), complete=False)
    drop, leftovers = store.plan_retention(store.list_dumps(str(tmp_path)), min_keep=1, now=now)
    assert drop == []
    assert sorted(item['path'] for item in leftovers) == sorted([old_incomplete, no_manifest])
    assert complete and newer_incomplete


def test_prune_removes_dump_manifest_roles_and_dead_temporaries(tmp_path):
    now = time.time()
    old = _fake_dump(tmp_path, _stamp(10, now), fmt='directory')
    new = _fake_dump(tmp_path, _stamp(0, now))
    other_db = _fake_dump(tmp_path, _stamp(10, now), db='other')
    temp = tmp_path / (TEMP_PREFIX + 'omero.2026-01-01T000000Z.pg_dump.x1')
    temp.write_text('half')
    unrelated_temp = tmp_path / (TEMP_PREFIX + 'config.xml.y')
    unrelated_temp.write_text('not ours')
    params = _params(dest=str(tmp_path), keep=1)
    would = PgDumpEngine(None).retention(db_dump.DumpOptions.from_params(params), check_mode=True).removed
    assert os.path.exists(old) and temp.exists()
    removed = PgDumpEngine(None).retention(db_dump.DumpOptions.from_params(params), check_mode=False).removed
    assert removed == would
    assert set(removed) == {old, old + '.manifest.json', old.replace('.pg_dump.d', '.roles.sql'), str(temp)}
    assert removed[0] == old + '.manifest.json'  # manifest first: an interrupted prune leaves no dump that looks complete
    for path in removed:
        assert not os.path.lexists(path)
    assert os.path.exists(new) and os.path.exists(other_db) and unrelated_temp.exists()


def test_tree_digest_is_the_sha256sum_listing():
    import hashlib
    entries = [{'path': 'toc.dat', 'sha256': 'b' * 64}, {'path': '3001.dat.gz', 'sha256': 'a' * 64}]
    listing = 'a' * 64 + '  3001.dat.gz\n' + 'b' * 64 + '  toc.dat\n'
    assert store.tree_digest(entries) == hashlib.sha256(listing.encode()).hexdigest()


def test_tool_path_uses_pg_bindir():
    assert postgres.tool_path(_params(pg_bindir='/usr/lib/postgresql/16/bin'), 'pg_dump') == '/usr/lib/postgresql/16/bin/pg_dump'
    assert postgres.tool_path(_params(), 'pg_dump') == 'pg_dump'


def test_dest_with_missing_parent_is_refused_before_anything(tmp_path):
    params = _params(dest=str(tmp_path / 'unmounted' / 'database'))
    with pytest.raises(DbDumpError, match='parent of dest'):
        db_dump.dump(params, runner=None)
    assert not (tmp_path / 'unmounted').exists()
