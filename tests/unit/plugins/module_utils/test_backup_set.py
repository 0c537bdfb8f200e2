# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup-set record: schema, validation, the version-1 records the roles wrote, writes, reads and retention."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import pwd

import pytest

from ansible_collections.omero.backup.plugins.module_utils import backup_set
from ansible_collections.omero.backup.plugins.module_utils.backup_set import Options, BackupSetError
from ansible_collections.omero.backup.plugins.module_utils.backup_set.schema import (
    TOP_ORDER, components_of, problems_of, set_id_for, set_id_problem, set_time)
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError

SHA_A = 'a' * 64
SHA_B = 'b' * 64
SHA_C = '0123456789abcdef' * 4
DAY = 86400.0


def v1_record(set_id='2026-11-26T083000Z', epoch=1795681800, **top):
    """A record as roles/backup/tasks/report.yml wrote it up to issue 13 (to_nice_json of the combine chain):
    ``datadir`` keeps the place of the top-level string it replaced, config and database follow in the order
    their tasks ran, ``complete`` is last."""
    text = '''{
    "set_id": "%(set_id)s",
    "format_version": 1,
    "server_host": "omero.example.org",
    "database_host": "db.example.org",
    "store_host": "store.example.org",
    "store_path": "/srv/backup/omero",
    "datadir": {
        "src": "/OMERO",
        "store": "store.example.org:/srv/backup/omero/datadir",
        "increment_time": "2026-11-26T08:30:00Z",
        "increment_epoch": %(epoch)d,
        "files": 1234,
        "bytes": 5678901,
        "warnings": []
    },
    "backup_dir": "/OMERO/backup",
    "dbname": "omero",
    "consistent": false,
    "config": {
        "path": "/OMERO/backup/config/omero.config",
        "sha256": "%(sha_a)s",
        "omero_version": "5.6.10",
        "other_sources": ["opt/omero/server/OMERO.server/lib/scripts"],
        "other_sources_archive": "/OMERO/backup/config/other-sources.tar.gz",
        "other_sources_sha256": "%(sha_b)s"
    },
    "database": {
        "host": "db.example.org",
        "path": "/OMERO/backup/database/omero.2026-11-26T083000Z.pg_dump",
        "manifest": "/OMERO/backup/database/omero.2026-11-26T083000Z.pg_dump.manifest.json",
        "files": ["omero.2026-11-26T083000Z.pg_dump", "omero.2026-11-26T083000Z.pg_dump.manifest.json",
                  "omero.2026-11-26T083000Z.globals.sql"],
        "sha256": "%(sha_c)s",
        "size": 4096,
        "schema_version": "OMERO5.4",
        "schema_patch": 0,
        "db_uuid": "3b6a2f4e-1111-2222-3333-444455556666",
        "server_stopped": false
    },
    "complete": true
}
''' % dict(set_id=set_id, epoch=epoch, sha_a=SHA_A, sha_b=SHA_B, sha_c=SHA_C)
    record = json.loads(text)
    record.update(top)
    return record


def present_options(store, increment='2026-11-26T08:30:00Z', epoch=1795681800, changed=True, **overrides):
    values = dict(
        state='present', store_path=str(store), server_host='omero.example.org', database_host='db.example.org',
        store_host='store.example.org', backup_dir='/OMERO/backup', dbname='omero', consistent=False,
        config={'path': '/OMERO/backup/config/omero.config', 'sha256': SHA_A, 'omero_version': '5.6.10', 'changed': changed},
        other_sources={'archive': '/OMERO/backup/config/other-sources.tar.gz', 'sha256': SHA_B,
                       'sources': ['opt/omero/server/OMERO.server/lib/scripts'], 'changed': False},
        database={'host': 'db.example.org', 'path': '/OMERO/backup/database/omero.pg_dump', 'files': ['omero.pg_dump'],
                  'sha256': SHA_C, 'size': 4096, 'schema_version': 'OMERO5.4', 'schema_patch': 0,
                  'db_uuid': 'uuid-1', 'server_stopped': False, 'changed': changed},
        datadir={'src': '/OMERO', 'store': 'store.example.org:/srv/datadir', 'increment_time': increment,
                 'increment_epoch': epoch, 'files': 3, 'bytes': 30, 'warnings': [], 'changed': changed})
    values.update(overrides)
    return Options(**values)


def write_record(store, name, record, mode=0o600):
    sets = store / 'sets'
    sets.mkdir(mode=0o700, exist_ok=True)
    path = sets / name
    path.write_text(json.dumps(record, indent=4) + '\n')
    os.chmod(str(path), mode)
    return path


@pytest.fixture
def store(tmp_path):
    path = tmp_path / 'store'
    path.mkdir(mode=0o700)
    return path


# ------------------------------------------------------------------ schema and validation

def test_a_version_1_record_written_by_the_roles_is_read_complete():
    record = v1_record()
    assert problems_of(record) == []
    assert components_of(record) == ['config', 'database', 'datadir']
    assert set_time(record) == 1795681800


def test_a_version_1_record_without_increment_epoch_is_timed_by_its_increment_time():
    record = v1_record()
    record['datadir']['increment_epoch'] = None  # a run whose datadir step was skipped
    assert problems_of(record) == []
    assert set_time(record) == 1795681800.0


@pytest.mark.parametrize('component, field, value, expected', [
    ('database', 'sha256', None, 'database.sha256 is missing'),
    ('database', 'sha256', 'A' * 64, 'database.sha256 must be 64 lowercase hex digits'),
    ('database', 'sha256', 'a' * 63, 'database.sha256 must be 64 lowercase hex digits'),
    ('database', 'sha256', 'a' * 63 + '\n', 'database.sha256 must be 64 lowercase hex digits'),
    ('database', 'files', 'omero.pg_dump', 'database.files must be a list of strings'),
    ('database', 'size', '4096', 'database.size must be an integer'),
    ('database', 'size', True, 'database.size must be an integer'),
    ('database', 'path', 'relative/dump', 'database.path must be an absolute path'),
    ('config', 'sha256', None, 'config.sha256 is missing'),
    ('config', 'other_sources_sha256', 'nothex', 'config.other_sources_sha256 must be 64 lowercase hex digits'),
    ('datadir', 'increment_time', None, 'datadir.increment_time is missing'),
    ('datadir', 'increment_epoch', 'soon', 'datadir.increment_epoch must be a number'),
])
def test_each_component_field_is_checked(component, field, value, expected):
    record = v1_record()
    record[component][field] = value
    problems = problems_of(record)
    assert any(problem.startswith(expected) for problem in problems), problems


@pytest.mark.parametrize('change, expected', [
    (lambda r: r.update(complete=False), 'the record does not say it is complete'),
    (lambda r: r.pop('complete'), 'the record does not say it is complete'),
    (lambda r: r.update(complete='true'), 'the record does not say it is complete'),
    (lambda r: r.pop('database'), 'the record names component database but holds no database mapping'),
    (lambda r: r.update(config='omero.config'), 'the record names component config but holds no config mapping'),
    (lambda r: r.update(set_id='../etc/passwd'), 'record.set_id must be a set id'),
    (lambda r: r.update(format_version=3), 'format_version 3 is not one this collection reads'),
    (lambda r: r.update(format_version='1'), "format_version '1' is not one this collection reads"),
])
def test_a_record_is_complete_only_when_it_says_so_and_holds_its_components(change, expected):
    record = v1_record()
    change(record)
    problems = problems_of(record)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_version_2_record_is_complete_only_when_each_component_it_names_says_so(store):
    record, problems = backup_set.schema.assemble(present_options(store), 0)
    assert problems == []
    record['database']['complete'] = False
    assert problems_of(record) == ['database does not say it is complete']
    record['database']['complete'] = True
    record['components'] = ['config', 'datadir']  # it names two: the third is not judged
    assert problems_of(record) == []
    record['components'] = ['config', 'tapes']
    assert problems_of(record)[0].startswith('components must name some of config, database, datadir')


@pytest.mark.parametrize('set_id', ['../x', '..', '.hidden', '-rf', 'a/b', '', 'latest', 'x' * 129, 'é', 'a b',
                                    'a\nb', None, 7])
def test_odd_set_ids_are_refused(set_id):
    assert set_id_problem(set_id)


@pytest.mark.parametrize('set_id', ['2026-11-26T083000Z', '1795681800', 'set_1.2-3', 'x' * 128])
def test_plain_set_ids_are_accepted(set_id):
    assert set_id_problem(set_id) is None


def test_a_set_is_named_after_its_increment_without_colons():
    assert set_id_for({'increment_time': '2026-11-26T08:30:00Z'}, 0) == '2026-11-26T083000Z'
    # Before there is an increment (a check run on a new store): after the time now, the same way.
    assert set_id_for({}, 1795681800) == '2026-11-26T083000Z'


def test_assemble_orders_the_record_and_keeps_run_flags_out(store):
    record, problems = backup_set.schema.assemble(present_options(store), 0)
    assert problems == [] and list(record) == list(TOP_ORDER) and list(record)[-1] == 'complete'
    assert record['format_version'] == 2 and record['components'] == ['config', 'database', 'datadir']
    assert all('changed' not in record[name] and record[name]['complete'] is True for name in record['components'])
    assert record['config']['other_sources_archive'] == '/OMERO/backup/config/other-sources.tar.gz'
    assert record['config']['other_sources_sha256'] == SHA_B


def test_assemble_refuses_fields_the_schema_does_not_have(store):
    options = present_options(store)
    options.database['sha265'] = SHA_C  # a typo must not pass as an extra field
    with pytest.raises(BackupSetError, match=r'database\.sha265 is not a field of the set record'):
        backup_set.schema.assemble(options, 0)


# ------------------------------------------------------------------ present

def test_present_writes_the_set_then_latest_0600_and_a_rerun_writes_nothing(store):
    result = backup_set.present(present_options(store), False, 0)
    assert result['changed'] and result['written'] and result['latest_written'] and result['complete']
    set_file = store / 'sets' / '2026-11-26T083000Z.json'
    assert result['path'] == str(set_file)
    for path in (set_file, store / 'sets' / 'latest.json'):
        assert os.stat(str(path)).st_mode & 0o777 == 0o600
        assert json.loads(path.read_text()) == result['record']
    assert os.stat(str(store / 'sets')).st_mode & 0o777 == 0o700
    assert [name for name in os.listdir(str(store / 'sets')) if name.startswith('.')] == []

    before = set_file.stat()
    again = backup_set.present(present_options(store), False, 10)
    assert not again['changed'] and not again['written'] and not again['latest_written']
    assert set_file.stat().st_mtime_ns == before.st_mtime_ns and set_file.stat().st_ino == before.st_ino


def test_a_rerun_that_redid_nothing_keeps_the_record_its_set_was_written_with(store):
    backup_set.present(present_options(store), False, 0)
    original = (store / 'sets' / '2026-11-26T083000Z.json').read_bytes()
    # A skipped datadir step reports no file counts: the record would differ, but nothing was redone.
    options = present_options(store, changed=False)
    options.datadir.update(files=None, bytes=None, increment_epoch=None)
    result = backup_set.present(options, False, 10)
    assert not result['changed'] and result['record'] == json.loads(original.decode())
    assert (store / 'sets' / '2026-11-26T083000Z.json').read_bytes() == original


def test_a_rerun_that_confirms_a_set_points_a_stale_latest_at_it(store):
    """A run killed between the set's rename and latest.json's left latest.json naming the set before."""
    backup_set.present(present_options(store, '2026-11-25T08:30:00Z', 1795595400), False, 0)
    newer = present_options(store)
    backup_set.present(newer, False, 0)
    write_record(store, 'latest.json', json.loads((store / 'sets' / '2026-11-25T083000Z.json').read_text()))
    result = backup_set.present(present_options(store, changed=False), False, 10)
    assert result['changed'] and not result['written'] and result['latest_written']
    assert json.loads((store / 'sets' / 'latest.json').read_text())['set_id'] == '2026-11-26T083000Z'


def test_check_mode_says_what_it_would_write_and_writes_nothing(store):
    result = backup_set.present(present_options(store), True, 0)
    assert result['changed'] and result['written'] and result['diff']['before'] == ''
    assert json.loads(result['diff']['after']) == result['record']
    assert not os.path.exists(str(store / 'sets'))


def test_check_mode_reports_an_incomplete_set_a_real_run_refuses(store):
    options = present_options(store)
    options.database.update(sha256=None)
    result = backup_set.present(options, True, 0)
    assert not result['complete'] and result['problems'] == ['database.sha256 is missing', 'database does not say it is complete']
    assert result['record']['complete'] is False
    with pytest.raises(BackupSetError, match='not complete: database.sha256 is missing'):
        backup_set.present(options, False, 0)
    assert not os.path.exists(str(store / 'sets'))


def test_present_refuses_a_missing_store_and_an_untrusted_sets_directory(tmp_path, store):
    with pytest.raises(BackupSetError, match='does not exist'):
        backup_set.present(present_options(tmp_path / 'nowhere'), False, 0)
    (store / 'sets').mkdir()
    os.chmod(str(store / 'sets'), 0o777)
    with pytest.raises(BackupSetError, match=r'writable by its group or by others \(mode 0777\)'):
        backup_set.present(present_options(store), False, 0)


def test_a_symlink_in_place_of_the_sets_directory_is_refused(tmp_path, store):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir(mode=0o700)
    os.symlink(str(elsewhere), str(store / 'sets'))
    with pytest.raises(BackupSetError, match='symlink or not a directory'):
        backup_set.present(present_options(store), False, 0)
    assert os.listdir(str(elsewhere)) == []


def test_a_symlinked_record_is_replaced_never_written_through(tmp_path, store):
    target = tmp_path / 'target'
    target.write_text('not ours to write')
    (store / 'sets').mkdir(mode=0o700)
    os.symlink(str(target), str(store / 'sets' / '2026-11-26T083000Z.json'))
    result = backup_set.present(present_options(store), False, 0)
    assert result['written'] and target.read_text() == 'not ours to write'
    assert not os.path.islink(str(store / 'sets' / '2026-11-26T083000Z.json'))


# ------------------------------------------------------------------ info and list

def test_info_reads_a_version_1_set_by_id_and_latest(store):
    write_record(store, '2026-11-26T083000Z.json', v1_record())
    write_record(store, 'latest.json', v1_record())
    for set_id in ('2026-11-26T083000Z', 'latest'):
        result = backup_set.info(Options(store_path=str(store), set_id=set_id, require_complete=True))
        assert result['complete'] and result['set_id'] == '2026-11-26T083000Z' and result['format_version'] == 1
        assert result['record']['database']['sha256'] == SHA_C and result['path'].endswith('/2026-11-26T083000Z.json')


def test_info_without_latest_json_reads_the_newest_complete_set_and_says_so(store):
    write_record(store, 'old.json', v1_record('old', 1000))
    write_record(store, 'new.json', v1_record('new', 2000))
    write_record(store, 'newest-broken.json', v1_record('newest-broken', 3000, complete=False))
    result = backup_set.info(Options(store_path=str(store), set_id='latest', require_complete=True))
    assert result['set_id'] == 'new' and 'latest.json is missing' in result['warnings'][0]


@pytest.mark.parametrize('set_id', ['../store/sets/x', '.hidden', 'a/b'])
def test_info_refuses_odd_set_ids(store, set_id):
    with pytest.raises(BackupSetError, match='is not one'):
        backup_set.info(Options(store_path=str(store), set_id=set_id, require_complete=True))


def test_info_fails_on_a_missing_or_incomplete_set_unless_asked(store):
    with pytest.raises(BackupSetError, match='no backup set nothere: .*nothere.json does not exist'):
        backup_set.info(Options(store_path=str(store), set_id='nothere', require_complete=True))
    write_record(store, 'partial.json', v1_record('partial', complete=False))
    with pytest.raises(BackupSetError, match='does not describe a complete backup set .the record does not say it is complete'):
        backup_set.info(Options(store_path=str(store), set_id='partial', require_complete=True))
    result = backup_set.info(Options(store_path=str(store), set_id='partial', require_complete=False))
    assert result['found'] and not result['complete'] and result['record']['set_id'] == 'partial'
    missing = backup_set.info(Options(store_path=str(store), set_id='nothere', require_complete=False))
    assert not missing['found'] and missing['record'] is None


def test_a_record_stored_under_another_sets_name_is_not_complete(store):
    write_record(store, 'renamed.json', v1_record('2026-11-26T083000Z'))
    result = backup_set.info(Options(store_path=str(store), set_id='renamed', require_complete=False))
    assert result['problems'] == ["the record names set '2026-11-26T083000Z' but is stored as renamed.json"]


@pytest.mark.parametrize('plant', ['symlink', 'group_writable', 'nobodys', 'not_json', 'fifo'])
def test_records_that_cannot_be_trusted_are_refused_on_read(tmp_path, store, plant):
    path = store / 'sets' / 'planted.json'
    if plant == 'symlink':
        (store / 'sets').mkdir(mode=0o700)
        elsewhere = write_record(tmp_path, 'real.json', v1_record('planted'))
        os.symlink(str(elsewhere), str(path))
        expected = 'is a symlink'
    elif plant == 'group_writable':
        write_record(store, 'planted.json', v1_record('planted'), mode=0o664)
        expected = 'writable by its group or by others'
    elif plant == 'nobodys':
        write_record(store, 'planted.json', v1_record('planted'))
        os.chown(str(path), pwd.getpwnam('nobody').pw_uid, -1)
        expected = 'owned by uid %d' % pwd.getpwnam('nobody').pw_uid
    elif plant == 'fifo':
        (store / 'sets').mkdir(mode=0o700)
        os.mkfifo(str(path), 0o600)
        expected = 'not a regular file'
    else:
        write_record(store, 'planted.json', v1_record('planted'))
        path.write_text('{"set_id": "planted", ')
        expected = 'is not a JSON record'
    with pytest.raises(BackupSetError, match=expected):
        backup_set.info(Options(store_path=str(store), set_id='planted', require_complete=True))


def test_a_world_readable_record_of_roots_is_read(store):
    """0644: the record holds no secret, and only who can write it decides whether it is trusted."""
    write_record(store, 'readable.json', v1_record('readable'), mode=0o644)
    assert backup_set.info(Options(store_path=str(store), set_id='readable', require_complete=True))['complete']


def test_list_is_newest_first_with_completeness_and_ignores_other_names(store):
    write_record(store, 'b.json', v1_record('b', 2000))
    write_record(store, 'a.json', v1_record('a', 3000))
    write_record(store, 'c.json', v1_record('c', 1000, complete=False))
    write_record(store, 'latest.json', v1_record('a', 3000))
    (store / 'sets' / 'notes.txt').write_text('x')
    (store / 'sets' / '.omero-backup-tmp.x.json.123').write_text('x')
    (store / 'sets' / b'odd\xff\n.json'.decode('utf-8', 'surrogateescape')).write_text('x')
    result = backup_set.listing(Options(store_path=str(store)))
    assert [entry['set_id'] for entry in result['sets']] == ['a', 'b', 'c']
    assert [entry['complete'] for entry in result['sets']] == [True, True, False]
    assert result['latest'] == 'a' and result['complete_sets'] == ['a', 'b']
    assert sorted(result['ignored']) == sorted(['notes.txt', 'odd\\xff\\n.json'])


def test_list_of_a_store_without_sets_is_empty(store):
    assert backup_set.listing(Options(store_path=str(store)))['sets'] == []


# ------------------------------------------------------------------ retention

def prune(store, check=False, now=10 * DAY, **values):
    return backup_set.prune(Options(store_path=str(store), **values), check, now)


def remaining(store):
    return sorted(name[:-5] for name in os.listdir(str(store / 'sets')) if name != 'latest.json')


def test_retention_keeps_the_n_newest_complete_and_what_is_younger(store):
    for day in range(1, 8):
        write_record(store, 'd%d.json' % day, v1_record('d%d' % day, int(day * DAY)))
    write_record(store, 'latest.json', v1_record('d7', int(7 * DAY)))
    result = prune(store, keep=2, keep_younger_than='4d')
    # keep=2: d7, d6; younger than 4 days at day 10: d7 (3 days), d6 (4 days is not younger).
    assert sorted(result['pruned']) == ['d1', 'd2', 'd3', 'd4', 'd5'] and remaining(store) == ['d6', 'd7']
    assert {entry['set_id']: entry['reason'] for entry in result['kept']}['d7'] == 'the newest complete set'


def test_retention_never_removes_the_newest_complete_set(store):
    write_record(store, 'old.json', v1_record('old', int(1 * DAY)))
    write_record(store, 'only-complete.json', v1_record('only-complete', int(2 * DAY)))
    write_record(store, 'newer-incomplete.json', v1_record('newer-incomplete', int(3 * DAY), complete=False))
    result = prune(store, keep_younger_than='1s')
    assert remaining(store) == ['only-complete'] and sorted(result['pruned']) == ['newer-incomplete', 'old']


def test_incomplete_sets_never_count_towards_keep(store):
    write_record(store, 'good.json', v1_record('good', int(1 * DAY)))
    for day in (2, 3, 4):
        write_record(store, 'bad%d.json' % day, v1_record('bad%d' % day, int(day * DAY), complete=False))
    prune(store, keep=2)
    assert remaining(store) == ['good']


def test_retention_keeps_the_set_latest_json_names_and_what_it_cannot_judge(tmp_path, store):
    write_record(store, 'a.json', v1_record('a', int(1 * DAY)))
    write_record(store, 'b.json', v1_record('b', int(2 * DAY)))
    write_record(store, 'c.json', v1_record('c', int(3 * DAY)))
    write_record(store, 'latest.json', v1_record('a', int(1 * DAY)))
    write_record(store, 'future.json', v1_record('future', int(1 * DAY), format_version=3))
    write_record(store, 'nobodys.json', v1_record('nobodys', int(1 * DAY)))
    os.chown(str(store / 'sets' / 'nobodys.json'), pwd.getpwnam('nobody').pw_uid, -1)
    os.symlink(str(write_record(tmp_path, 'x.json', v1_record('linked'))), str(store / 'sets' / 'linked.json'))
    result = prune(store, keep=1)
    assert result['pruned'] == ['b']
    assert remaining(store) == ['a', 'c', 'future', 'linked', 'nobodys']
    reasons = {entry['set_id']: entry['reason'] for entry in result['kept']}
    assert reasons['a'] == 'the set latest.json names' and reasons['future'].startswith('not a record this module can judge')


def test_retention_removes_nothing_without_a_complete_set(store):
    write_record(store, 'x.json', v1_record('x', 1, complete=False))
    result = prune(store, keep=1)
    assert result['pruned'] == [] and not result['changed'] and remaining(store) == ['x']


def test_retention_in_check_mode_removes_nothing(store):
    write_record(store, 'a.json', v1_record('a', 1))
    write_record(store, 'b.json', v1_record('b', 2))
    result = prune(store, check=True, keep=1)
    assert result['changed'] and result['pruned'] == ['a'] and remaining(store) == ['a', 'b']


@pytest.mark.parametrize('values, expected', [
    ({'keep': 0}, 'keep must be 1 or more'),
    ({'keep': 1, 'keep_younger_than': '2 months'}, 'cannot read duration'),
    ({'keep': 1, 'keep_younger_than': '1min'}, 'minutes are m'),
])
def test_retention_refuses_bad_input_and_changes_nothing(store, values, expected):
    write_record(store, 'a.json', v1_record('a', 1))
    write_record(store, 'b.json', v1_record('b', 2))
    with pytest.raises(OmeroBackupError, match=expected):
        prune(store, **values)
    assert remaining(store) == ['a', 'b']


def test_retention_reads_durations_in_the_one_grammar(store):
    write_record(store, 'a.json', v1_record('a', int(10 * DAY - 59)))
    write_record(store, 'b.json', v1_record('b', int(10 * DAY - 30)))
    write_record(store, 'c.json', v1_record('c', int(10 * DAY)))
    # 1m is one minute (1M would be thirty days, and keep both).
    assert sorted(prune(store, check=True, keep=1, keep_younger_than='1m')['pruned']) == []
    assert prune(store, check=True, keep=1, keep_younger_than='45')['pruned'] == ['a']


def test_an_increment_time_with_an_offset_names_the_same_set():
    """ansible-core 2.19 turns a quoted YAML timestamp under !unsafe into a datetime, rendered +00:00."""
    assert set_id_for({'increment_time': '2026-11-26T08:30:00+00:00'}, 0) == '2026-11-26T083000Z'
    assert set_id_for({'increment_time': '2026-11-26T09:30:00+01:00'}, 0) == '2026-11-26T083000Z'
    assert set_time({'datadir': {'increment_time': '2026-11-26T08:30:00+00:00'}}) == 1795681800.0
    # Not a time: stripped to the set id characters, as the roles did.
    assert set_id_for({'increment_time': 'odd:stamp/1'}, 0) == 'oddstamp1'


# A record as the roles at 590aa7d wrote it (captured from a real backup of a sandbox, byte for byte).
V1_FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'backup_set_v1_590aa7d.json')


def test_a_record_the_roles_wrote_at_590aa7d_is_read_complete_and_kept_by_a_rerun(store):
    with open(V1_FIXTURE, 'rb') as handle:
        raw = handle.read()
    record = json.loads(raw.decode())
    set_id = record['set_id']
    write_record(store, set_id + '.json', record)
    (store / 'sets' / (set_id + '.json')).write_bytes(raw)
    (store / 'sets' / 'latest.json').write_bytes(raw)
    os.chmod(str(store / 'sets' / 'latest.json'), 0o600)
    for wanted in (set_id, 'latest'):
        result = backup_set.info(Options(store_path=str(store), set_id=wanted, require_complete=True))
        assert result['complete'] and result['format_version'] == 1 and result['record'] == record, result['problems']
        assert result['components'] == ['config', 'database', 'datadir']
    # A re-run that redid nothing confirms the version-1 set as it is: nothing rewritten, latest.json left alone.
    options = present_options(store, increment=record['datadir']['increment_time'], changed=False)
    result = backup_set.present(options, False, 0)
    assert result['set_id'] == set_id and not result['changed'] and result['record'] == record
    assert (store / 'sets' / (set_id + '.json')).read_bytes() == raw
