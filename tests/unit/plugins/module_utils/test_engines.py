# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine seam: the factory, the names the modules offer, and every engine implementing its whole interface."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import inspect

import pytest

from ansible_collections.omero.backup.plugins.module_utils import db_dump, db_restore
from ansible_collections.omero.backup.plugins.module_utils.datadir import common as datadir_common
from ansible_collections.omero.backup.plugins.module_utils.engines import base
from ansible_collections.omero.backup.plugins.module_utils.engines.base import (
    DATABASE, DATADIR, DatabaseEngine, DatadirEngine, EngineError, Point, engine_for, engine_names, exclude_patterns)
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump import PgDumpEngine
from ansible_collections.omero.backup.plugins.module_utils.engines.pgbackrest import PgBackRestEngine
from ansible_collections.omero.backup.plugins.module_utils.engines.rdiff_backup import RdiffBackupEngine


def never_run(argv, env=None, data=None, cwd=None):
    raise AssertionError('the factory runs nothing: %r' % (argv,))


def test_the_factory_builds_each_known_engine_with_its_runner_and_settings():
    rdiff = engine_for(DATADIR, 'rdiff-backup', never_run, executable='/opt/rdiff/bin/rdiff-backup', ssh_port=2222)
    assert isinstance(rdiff, RdiffBackupEngine) and rdiff.runner is never_run and rdiff.commands == []
    assert rdiff.executable == '/opt/rdiff/bin/rdiff-backup' and rdiff.ssh['ssh_port'] == 2222
    pg_dump = engine_for(DATABASE, 'pg_dump', never_run)
    assert isinstance(pg_dump, PgDumpEngine) and pg_dump.runner is never_run
    assert (rdiff.kind, pg_dump.kind) == (DATADIR, DATABASE)


@pytest.mark.parametrize('kind, name, message', [
    (DATADIR, 'borg', "unknown datadir engine 'borg': use 'rdiff-backup' or 'restic'"),
    (DATABASE, 'rdiff-backup', "unknown database engine 'rdiff-backup': use 'pg_dump' or 'pgbackrest'"),
    (DATADIR, 'pg_dump', "unknown datadir engine 'pg_dump'"),
    ('tape', 'rdiff-backup', "no engine kind 'tape': use 'datadir' or 'database'"),
    (DATADIR, None, "unknown datadir engine None"),
])
def test_an_unknown_engine_is_a_clear_error(kind, name, message):
    with pytest.raises(EngineError, match=message):
        engine_for(kind, name, never_run)


def test_the_modules_offer_exactly_the_engines_the_factory_knows():
    assert engine_names(DATADIR) == sorted(datadir_common.ENGINES) == ['rdiff-backup', 'restic']
    assert engine_names(DATABASE) == sorted(db_restore.ENGINES) == sorted(db_dump.ENGINES) == ['pg_dump', 'pgbackrest']
    for spec in (datadir_common.backup_argument_spec(), datadir_common.restore_argument_spec(),
                 db_dump.dump_argument_spec(), db_restore.restore_argument_spec()):
        assert spec['engine']['default'] in spec['engine']['choices']


def _interface(cls):
    """The abstract methods an engine class must implement: those of its interface."""
    interface = DatadirEngine if issubclass(cls, DatadirEngine) else DatabaseEngine
    return interface, sorted(interface.__abstractmethods__)


@pytest.mark.parametrize('cls', [RdiffBackupEngine, PgDumpEngine, PgBackRestEngine])
def test_each_engine_implements_every_method_of_its_interface(cls):
    interface, methods = _interface(cls)
    assert {'backup', 'list', 'restore', 'verify', 'retention', 'health'} <= set(methods)
    assert not inspect.isabstract(cls) and cls.name in engine_names(interface.kind)
    for method in methods:
        implementation = getattr(cls, method)
        assert implementation is not getattr(interface, method), '%s does not implement %s' % (cls.__name__, method)
        wanted = list(inspect.signature(getattr(interface, method)).parameters)
        given = list(inspect.signature(implementation).parameters)
        # Same parameters in the same order (an engine may add optional ones at the end).
        assert given[:len(wanted)] == wanted, '%s.%s%s' % (cls.__name__, method, given)


def test_an_engine_missing_a_method_cannot_be_built():
    class Half(DatadirEngine):
        name = 'half'

        def backup(self, src, repo, excludes, previous=(), statistics=False, check_mode=False):
            return None

    with pytest.raises(TypeError):
        Half(never_run)  # pylint: disable=abstract-class-instantiated


def test_results_are_small_typed_records():
    point = Point(1764576553, 1764576553, 'increment')
    assert point.time == '2025-12-01T08:09:13Z' and point.complete and point.details == {}
    assert point.as_dict() == {'id': 1764576553, 'epoch': 1764576553, 'kind': 'increment', 'complete': True, 'details': {}}
    assert point == Point(1764576553, 1764576553, 'increment') and point != Point(1, 1, 'increment')
    health = base.Health(False, version='2.2.6', problems=['cannot reach'])
    assert health.as_dict()['problems'] == ['cannot reach'] and 'Health(' in repr(health)


def test_exclusion_patterns_are_checked_once_for_every_engine():
    assert exclude_patterns(None) == list(base.DEFAULT_EXCLUDES)
    assert exclude_patterns(['/a/', 'FullText'], exclude_fulltext=True) == ['a', 'FullText']
    with pytest.raises(EngineError, match='an empty pattern would exclude the whole data dir'):
        exclude_patterns(['/'])
    with pytest.raises(EngineError, match='may not leave it'):
        exclude_patterns(['Files/../../etc'])
    rdiff = engine_for(DATADIR, 'rdiff-backup', never_run)
    escaped = '/data/\\[x\\]/'
    assert rdiff.excludes('/data/[x]', ['a']) == [escaped + 'a'] + [escaped + pattern for pattern in base.LEFTOVER_PATTERNS]


def test_rdiff_backup_keeps_one_tree_and_refuses_extra_paths_before_running_anything(tmp_path):
    """restic stores a set's dump and config in the data dir's snapshot (``extra``); rdiff-backup cannot, and says so."""
    engine = engine_for(DATADIR, 'rdiff-backup', never_run)
    repo = engine.parse_repository(str(tmp_path / 'repo'), 'dest')
    with pytest.raises(EngineError, match='one tree per repository: /backup/omero.pg_dump cannot go into the backup'):
        engine.backup(str(tmp_path), repo, [], label='2026-12-03T074500Z', extra=['/backup/omero.pg_dump'])
    assert engine.commands == []
