# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cleanse logic that needs no database: id sets, the walk, removal, omero argv and output parsing, the lock."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import array
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.omero.backup.plugins.module_utils.cleanse import ids as cleanse_ids
from ansible_collections.omero.backup.plugins.module_utils.cleanse import interlocks as cleanse_interlocks
from ansible_collections.omero.backup.plugins.module_utils.cleanse import omero as cleanse_omero
from ansible_collections.omero.backup.plugins.module_utils.cleanse import options as cleanse_options
from ansible_collections.omero.backup.plugins.module_utils.cleanse import remove as cleanse_remove
from ansible_collections.omero.backup.plugins.module_utils.cleanse import results as cleanse_results
from ansible_collections.omero.backup.plugins.module_utils.cleanse import run as cleanse_run
from ansible_collections.omero.backup.plugins.module_utils.cleanse import walk as cleanse_walk
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import id_to_relpath
from ansible_collections.omero.backup.plugins.module_utils.base.locking import datadir_lock_path
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCli

OLD = time.time() - 7 * 86400
SECRET = 'omero-Adm1n-pass'


@pytest.mark.parametrize('wanted', [
    [999001, 999002, 999999],      # one directory: the slice path
    [1, 5000000, 999999999],       # scattered: binary search per id
])
def test_id_lookup_agrees_with_a_plain_set(wanted):
    ids = array.array('q', [1, 2, 999001, 999999, 1000000, 5000000])
    lookup = cleanse_ids.id_lookup(ids, wanted)
    assert set(object_id for object_id in wanted if object_id in lookup) == set(wanted) & set(ids)


def test_id_lookup_of_nothing_is_empty():
    assert 5 not in cleanse_ids.id_lookup(array.array('q'), [])
    assert 5 not in cleanse_ids.id_lookup(array.array('q'), [5])


def test_order_check_catches_any_inversion():
    assert cleanse_ids._is_strictly_increasing(array.array('q', [1, 2, 999001, 1000000]))
    assert cleanse_ids._is_strictly_increasing(array.array('q'))
    assert not cleanse_ids._is_strictly_increasing(array.array('q', [1, 3, 2]))
    assert not cleanse_ids._is_strictly_increasing(array.array('q', [1, 1]))


def _touch(root, relpath, data=b'x', mtime=OLD):
    path = os.path.join(root, relpath)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as handle:
        handle.write(data)
    os.utime(path, (mtime, mtime))
    return path


def _walk(datadir, subdir, ids, min_age=3600, now=None):
    stats = cleanse_results.new_stats()
    spool = cleanse_results.open_spool()
    listing = cleanse_results.Listing(100)
    unknown = cleanse_results.Listing(100)
    walker = cleanse_walk.Walker(str(datadir), subdir, array.array('q', sorted(ids)), stats, spool, listing, unknown,
                                 now or time.time(), min_age)
    walker.walk()
    found = sorted(relpath for relpath, _size, _id in cleanse_results.spool_read(spool))
    spool.close()
    return stats, found, walker.empty_dirs, unknown.sample


def test_walk_finds_orphans_of_every_name_form_and_band(tmp_path):
    datadir = str(tmp_path)
    existing = [1, 999, 1000, 999001, 1000000, 1234567]
    for object_id in existing:
        _touch(datadir, 'Pixels/' + id_to_relpath(object_id))
    orphans = ['Pixels/998', 'Pixels/Dir-999/999002_pyramid', 'Pixels/Dir-999/.999998_pyramid.pyr_lock',
               'Pixels/Dir-001/Dir-000/.1000001_pyramid1234.tmp', 'Pixels/Dir-002/Dir-345/2345678']
    for relpath in orphans:
        _touch(datadir, relpath)
    # Companions of an existing pixels row stay.
    kept = ['Pixels/1_pyramid', 'Pixels/.999_pyramid.pyr_lock', 'Pixels/.999_pyramid42.tmp']
    unknown = ['Pixels/12345.bak', 'Pixels/Dir-001/notanid', 'Pixels/lost+found/7']
    for relpath in kept + unknown:
        _touch(datadir, relpath)
    stats, found, empty_dirs, unknown_listed = _walk(datadir, 'Pixels', existing)
    assert found == sorted(orphans)
    assert stats['orphans'] == len(orphans)
    assert stats['orphan_bytes'] == len(orphans)
    assert stats['highest_orphan_id'] == 2345678
    # lost+found is not the server's directory: kept whole, never entered.
    assert sorted(unknown_listed) == sorted(['Pixels/12345.bak', 'Pixels/Dir-001/notanid', 'Pixels/lost+found/'])
    # Dir-999 keeps 999001, Dir-001/Dir-000 keeps 1000000: only Dir-002 and its child empty out.
    assert empty_dirs == ['Pixels/Dir-002/Dir-345', 'Pixels/Dir-002']


def test_walk_does_not_enter_a_directory_only_named_like_an_id_directory(tmp_path):
    """'Dir-123\\n' is not the server's: kept whole, never entered ($ would match before the newline)."""
    datadir = str(tmp_path)
    _touch(datadir, 'Pixels/Dir-123\n/123456')
    stats, found, empty_dirs, unknown_listed = _walk(datadir, 'Pixels', [1])
    assert found == [] and stats['orphans'] == 0
    # Results show the newline escaped (names.escape), so the list stays one line per name.
    assert unknown_listed == ['Pixels/Dir-123\\n/']


def test_walk_keeps_a_directory_named_like_an_orphan_id(tmp_path):
    datadir = str(tmp_path)
    _touch(datadir, 'Files/Dir-001/1500/table.h5')
    _touch(datadir, 'Files/Dir-001/1501')
    stats, found, empty_dirs, unknown_listed = _walk(datadir, 'Files', [])
    assert found == ['Files/Dir-001/1501']
    assert unknown_listed == ['Files/Dir-001/1500/']
    assert empty_dirs == []


def test_walk_keeps_young_orphans(tmp_path):
    datadir = str(tmp_path)
    _touch(datadir, 'Thumbnails/Dir-001/1001', mtime=time.time())
    _touch(datadir, 'Thumbnails/Dir-001/1002')
    stats, found, empty_dirs, _unknown = _walk(datadir, 'Thumbnails', [])
    assert found == ['Thumbnails/Dir-001/1002']
    assert stats['kept_young'] == 1
    assert empty_dirs == []
    stats, found, _dirs, _unknown = _walk(datadir, 'Thumbnails', [], min_age=0, now=time.time() + 1)
    assert found == ['Thumbnails/Dir-001/1001', 'Thumbnails/Dir-001/1002']


def test_walk_follows_a_symlinked_root_but_no_symlinked_directory_below_it(tmp_path):
    volume = str(tmp_path / 'volume')
    datadir = str(tmp_path / 'OMERO')
    _touch(volume, 'Files/998')
    _touch(volume, 'elsewhere/997')
    os.makedirs(datadir)
    os.symlink(os.path.join(volume, 'Files'), os.path.join(datadir, 'Files'))
    os.symlink(os.path.join(volume, 'elsewhere'), os.path.join(volume, 'Files', 'Dir-001'))
    stats, found, _dirs, _unknown = _walk(datadir, 'Files', [])
    # The Dir-001 symlink is an entry that is not an id: kept, never entered.
    assert found == ['Files/998']
    assert stats['kept_unknown'] == 1


def test_walk_of_a_missing_directory_finds_nothing(tmp_path):
    stats, found, empty_dirs, _unknown = _walk(str(tmp_path), 'Files', [])
    assert (stats['entries'], found, empty_dirs) == (0, [], [])


def test_omero_equivalent_queries_count_every_entry_in_batches_of_25(tmp_path):
    datadir = str(tmp_path)
    for object_id in range(1, 52):
        _touch(datadir, 'Files/%d' % object_id)
    stats, _found, _dirs, _unknown = _walk(datadir, 'Files', range(1, 52))
    assert stats['omero_queries'] == 3


def _cleanse_without_database(datadir, ids, quarantine=None, subdirs=('Pixels', 'Files', 'Thumbnails'), before_removal=None):
    """The walk and the removal of cleanse_database, with ``ids`` standing in for every table."""
    result = cleanse_results.new_result({'datadir': datadir, 'quarantine_dir': quarantine}, 'database')
    spool = cleanse_results.open_spool()
    listing, unknown = cleanse_results.Listing(100), cleanse_results.Listing(100)
    empty_dirs, dir_records = [], {}
    for subdir in subdirs:
        result['subdirectories'][subdir] = cleanse_results.new_stats()
        walker = cleanse_walk.Walker(datadir, subdir, array.array('q', sorted(ids)), result['subdirectories'][subdir], spool,
                                     listing, unknown, time.time(), 3600)
        walker.walk()
        empty_dirs.extend(walker.empty_dirs)
        dir_records.update(walker.dirs)
    if before_removal:
        before_removal()
    cleanse_remove.apply(datadir, quarantine, spool, empty_dirs, result, time.time() - 3600, None, dir_records)
    spool.close()
    cleanse_results.totals(result)
    return result


def test_quarantine_keeps_relative_paths_on_the_same_filesystem(tmp_path):
    datadir = str(tmp_path / 'OMERO')
    quarantine = str(tmp_path / 'quarantine')
    source = _touch(datadir, 'Pixels/Dir-999/999002_pyramid', b'pyramid')
    _touch(datadir, 'Pixels/Dir-999/999001')
    inode = os.stat(source).st_ino
    result = _cleanse_without_database(datadir, [999001], quarantine)
    assert result['removed'] == 1 and result['errors'] == []
    target = os.path.join(quarantine, 'Pixels/Dir-999/999002_pyramid')
    assert not os.path.exists(source)
    assert os.stat(target).st_ino == inode  # moved (a hard link, then the original unlinked), not copied
    assert os.stat(target).st_nlink == 1
    assert os.stat(target).st_mtime == pytest.approx(OLD, abs=1)


@pytest.mark.skipif(not os.path.isdir('/dev/shm'), reason='needs a second filesystem')
def test_quarantine_copies_across_filesystems(tmp_path):
    import tempfile
    quarantine = tempfile.mkdtemp(dir='/dev/shm', prefix='cleanse-quarantine-')
    if os.stat(quarantine).st_dev == os.stat(str(tmp_path)).st_dev:
        pytest.skip('/dev/shm is on the same filesystem here')
    try:
        datadir = str(tmp_path / 'OMERO')
        source = _touch(datadir, 'Files/998', b'attachment')
        os.symlink('/nonexistent/target', os.path.join(datadir, 'Files/999'))
        os.utime(os.path.join(datadir, 'Files/999'), (OLD, OLD), follow_symlinks=False)
        result = _cleanse_without_database(datadir, [], quarantine, subdirs=['Files'])
        assert result['removed'] == 2 and result['errors'] == []
        assert not os.path.lexists(source)
        with open(os.path.join(quarantine, 'Files/998'), 'rb') as handle:
            assert handle.read() == b'attachment'
        assert os.stat(os.path.join(quarantine, 'Files/998')).st_mtime == pytest.approx(OLD, abs=1)
        assert os.readlink(os.path.join(quarantine, 'Files/999')) == '/nonexistent/target'
        assert not [name for name in os.listdir(os.path.join(quarantine, 'Files')) if name.startswith('.omero-backup-tmp.')]
    finally:
        import shutil
        shutil.rmtree(quarantine)


def test_quarantine_never_overwrites(tmp_path):
    datadir = str(tmp_path / 'OMERO')
    quarantine = str(tmp_path / 'quarantine')
    source = _touch(datadir, 'Files/998', b'new')
    _touch(quarantine, 'Files/998', b'earlier run')
    os.chmod(quarantine, 0o700)
    result = _cleanse_without_database(datadir, [], quarantine, subdirs=['Files'])
    assert result['removed'] == 0
    assert result['errors'] == ['Files/998: already in the quarantine, left in place']
    assert os.path.exists(source)
    with open(os.path.join(quarantine, 'Files/998'), 'rb') as handle:
        assert handle.read() == b'earlier run'


def test_quarantine_inside_a_cleansed_directory_is_refused(tmp_path):
    datadir = str(tmp_path)
    with pytest.raises(OmeroBackupError, match='inside the scanned directory'):
        cleanse_remove.check_quarantine_dir(datadir, os.path.join(datadir, 'Files', 'q'), ['Files'])
    cleanse_remove.check_quarantine_dir(datadir, os.path.join(datadir, 'quarantine'), ['Files'])


def test_uuid_interlock(tmp_path):
    datadir = str(tmp_path)
    os.makedirs(os.path.join(datadir, '.omero', 'repository', 'right-uuid'))
    assert cleanse_interlocks.check_uuid(datadir, 'right-uuid') is None
    assert 'does not belong to this database' in cleanse_interlocks.check_uuid(datadir, 'other-uuid')
    assert 'no omero.db.uuid' in cleanse_interlocks.check_uuid(datadir, None)


def test_report_file_lists_every_orphan(tmp_path):
    spool = cleanse_results.open_spool()
    cleanse_results.spool_write(spool, 'Pixels/998', 333, 998)
    cleanse_results.spool_write(spool, 'Files/Dir-999/999002', 10, 999002)
    report = str(tmp_path / 'report.tsv')
    cleanse_results.write_report(report, spool, {'check_mode': False, 'quarantine_dir': None},
                                 removed_paths={'Pixels/998'})
    with open(report) as handle:
        assert handle.read() == 'Pixels/998\t333\tremoved\nFiles/Dir-999/999002\t10\tkept\n'
    assert os.stat(report).st_mode & 0o777 == 0o600


def test_unknown_subdirectory_is_rejected():
    with pytest.raises(OmeroBackupError, match='unknown subdirectories'):
        cleanse_options.check_subdirectories(['Pixels', 'ManagedRepository'])
    assert cleanse_options.check_subdirectories(['Thumbnails', 'Pixels']) == ['Pixels', 'Thumbnails']


# ------------------------------------------------------------------ omero backend: argv and output

def _omero_params(**overrides):
    params = dict(datadir='/OMERO', omero_host='omero.example.org', omero_port=4064, omero_user='root',
                  omero_password=SECRET, managed_repository_empty_dirs=False, session_idle_timeout=3600)
    params.update(overrides)
    return params


def test_login_arguments_carry_no_password():
    argv = cleanse_omero.omero_login_args(_omero_params())
    assert argv == ['-s', 'omero.example.org', '-p', '4064', '-u', 'root']


def test_cleanse_runs_one_subdirectory_at_a_time_to_stay_out_of_managed_repository():
    runs = cleanse_omero.omero_cleanse_runs(_omero_params(), ['Pixels', 'Files', 'Thumbnails'], dry_run=True)
    assert runs == [['admin', 'cleanse', '--dry-run', '--subdirectory', name, '/OMERO']
                    for name in ('Pixels', 'Files', 'Thumbnails')]


def test_cleanse_runs_without_subdirectory_for_managed_repository_dirs():
    runs = cleanse_omero.omero_cleanse_runs(_omero_params(managed_repository_empty_dirs=True), list(cleanse_options.SUBDIRECTORIES))
    assert runs == [['admin', 'cleanse', '/OMERO']]
    runs = cleanse_omero.omero_cleanse_runs(_omero_params(managed_repository_empty_dirs=True), ['Files'])
    assert runs == [['admin', 'cleanse', '--subdirectory', 'Files', '/OMERO'],
                    ['admin', 'cleanse', '--subdirectory', 'ManagedRepository', '/OMERO']]


class RecordingRunner(object):
    """Stands in for the omero executable to see exactly what would be run."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv, env=None, data=None, cwd=None):
        self.calls.append((list(argv), dict(env or {})))
        return 0, '', ''


def test_session_logs_in_raises_idle_timeout_and_logs_out_with_password_only_in_environment():
    runner = RecordingRunner()
    cli = OmeroCli(runner, omerodir='/opt/omero/server/OMERO.server', omero_command='/usr/bin/omero', user=None)
    with cleanse_omero.OmeroSession(cli, _omero_params()) as session:
        session.run('admin', 'cleanse', '--dry-run', '/OMERO')
        session_dir = session.session_dir
        assert os.path.isdir(session_dir)
    assert not os.path.exists(session_dir)
    commands = [argv[7:] for argv, _env in runner.calls]
    assert commands == [['sessions', 'login'], ['sessions', 'timeout', '3600'],
                        ['admin', 'cleanse', '--dry-run', '/OMERO'], ['sessions', 'logout']]
    for argv, env in runner.calls:
        assert argv[:7] == ['/usr/bin/omero', '-s', 'omero.example.org', '-p', '4064', '-u', 'root']
        assert SECRET not in ' '.join(argv)
        assert env['OMERO_PASSWORD'] == SECRET
        assert env['OMERO_SESSIONDIR'] == session_dir


DRY_RUN_OUTPUT = r"""Reconciling OMERO data directory...
 /OMERO/Pixels
   \_ /OMERO/Pixels/998 (remove)
   \_ /OMERO/Pixels/Dir-999/999002_pyramid (remove)
   \_ /OMERO/Pixels/Dir-999/.999998_pyramid.pyr_lock (remove)
   \_ /OMERO/Pixels/Dir-001/Dir-000/.1000001_pyramid475097996752665461.tmp (remove)
   \_ /OMERO/Pixels/12345.bak (ignored/keep)
   \_ /OMERO/Pixels/1 (keep)
Reconciling OMERO data directory...
 /OMERO/Files
   \_ /OMERO/Files/998 (remove)
   \_ /OMERO/Files/Dir-001/1500 (removedir)
/OMERO/Thumbnails does not exist. Skipping...
Cleansing context: 5 files (333 bytes)
Removing empty directories from...
 /OMERO/ManagedRepository
   \_ /OMERO/ManagedRepository/user-1_2/2023-03/01/ (remove)
"""


def test_dry_run_output_is_parsed_into_paths_relative_to_the_data_dir():
    parsed = cleanse_omero.parse_omero_output(DRY_RUN_OUTPUT, '/OMERO')
    assert parsed['files'] == ['Pixels/998', 'Pixels/Dir-999/999002_pyramid', 'Pixels/Dir-999/.999998_pyramid.pyr_lock',
                               'Pixels/Dir-001/Dir-000/.1000001_pyramid475097996752665461.tmp', 'Files/998']
    assert parsed['id_dirs'] == ['Files/Dir-001/1500']
    assert parsed['managed_dirs'] == ['ManagedRepository/user-1_2/2023-03/01/']
    assert parsed['missing'] == ['/OMERO/Thumbnails']
    # omero-py's byte total is the size of the last file, not the sum: read, never trusted.
    assert parsed['context'] == {'files': 5, 'bytes': 333}
    assert parsed['other'] == []


def test_real_run_output_reports_managed_dirs_and_errors():
    text = ("No action taken for directory /OMERO/Files/Dir-001/1500\n"
            "[Errno 13] Permission denied: '/OMERO/Pixels/998'\n"
            "Removing empty directories from...\n /OMERO/ManagedRepository\n"
            "Removing /OMERO/ManagedRepository/user-1_2/2023-03/01/\n")
    parsed = cleanse_omero.parse_omero_output(text, '/OMERO/')
    assert parsed['managed_dirs'] == ['ManagedRepository/user-1_2/2023-03/01/']
    assert parsed['other'] == ["[Errno 13] Permission denied: '/OMERO/Pixels/998'"]
    assert parsed['files'] == []


@pytest.mark.parametrize('name', ['1', '0123', '999999', '1_pyramid', '.1_pyramid.pyr_lock', '.1_pyramid99.tmp',
                                  '123\n', '\u0661\u0662', '\u00b2', '12345.bak', 'notanid', '.DS_Store', '', 'Dir-001'])
def test_entry_ids_fast_path_agrees_with_entry_id(name):
    from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import entry_id, entry_ids
    assert entry_ids([name]) == [entry_id(name)]


def test_entry_ids_of_whole_directories():
    from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import entry_ids
    assert entry_ids(['1000', '1999', '1001']) == [1000, 1999, 1001]
    # int() would take these; the name rule does not.
    assert entry_ids(['1000', '1_000', ' 12', '+5', '1000_pyramid']) == [1000, None, None, None, 1000]
    assert entry_ids([]) == []


# ------------------------------------------------------------------ data dir lock

def _hold_datadir_lock(path):
    """Another process holding the data dir lock file ``path`` until killed (as a datadir run would)."""
    collections = cleanse_run.__file__.partition(os.sep + 'ansible_collections' + os.sep)[0]
    holder = ('import sys\nsys.path.insert(0, sys.argv[2])\n'
              'from ansible_collections.omero.backup.plugins.module_utils.base.locking import ExclusiveLock\n'
              'lock = ExclusiveLock(sys.argv[1], "test holder").acquire()\n'
              'sys.stdout.write("locked\\n")\nsys.stdout.flush()\nsys.stdin.read()\n')
    proc = subprocess.Popen([sys.executable, '-c', holder, path, collections], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b'locked'
    return proc


def test_datadir_lock_is_keyed_by_the_real_path(tmp_path):
    (tmp_path / 'OMERO-volume').mkdir()
    (tmp_path / 'OMERO').symlink_to(tmp_path / 'OMERO-volume')
    (tmp_path / 'other').mkdir()
    lock_dir = str(tmp_path)
    path = datadir_lock_path(str(tmp_path / 'OMERO'), lock_dir)
    assert path == datadir_lock_path(str(tmp_path / 'OMERO-volume') + '/', lock_dir)
    assert os.path.basename(path).startswith('omero-backup-datadir-') and os.path.dirname(path) == lock_dir
    assert path != datadir_lock_path(str(tmp_path / 'other'), lock_dir)


def test_a_held_data_dir_lock_refuses_and_removes_nothing(tmp_path):
    datadir = str(tmp_path / 'OMERO')
    orphan = _touch(datadir, 'Pixels/7')
    params = {'datadir': datadir, 'db': 'omero', 'lock_dir': str(tmp_path), 'min_age': '0', 'force': True,
              'login_unix_socket': str(tmp_path / 'no-server'), 'port': 5432, 'connect_timeout': 1}
    holder = _hold_datadir_lock(datadir_lock_path(datadir, str(tmp_path)))
    try:
        for backend in ('database', 'omero'):
            with pytest.raises(OmeroBackupError) as error:
                cleanse_run.cleanse(dict(params, backend=backend), runner=None, check_mode=False)
            message = str(error.value)
            assert 'already running' in message and 'pid %d' % holder.pid in message and 'Nothing was removed' in message
        # Check mode takes no lock: it goes on to the database, which is not there.
        with pytest.raises(cleanse_options.CleanseRefused, match='unreachable') as refused:
            cleanse_run.cleanse(params, runner=None, check_mode=True)
        assert refused.value.result['lock'] is None
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(orphan)
    with pytest.raises(cleanse_options.CleanseRefused, match='unreachable') as refused:
        cleanse_run.cleanse(params, runner=None, check_mode=False)
    assert refused.value.result['lock'] == datadir_lock_path(datadir, str(tmp_path))
    assert os.path.exists(orphan)


# ------------------------------------------------------------------ quarantine undo, odd names (issue 12, items 7 and 9)

def _tree_state(root):
    """Every entry below root: type, owner, mode, mtime (ns), and content or link target; directories included."""
    import hashlib
    import stat as stat_module
    state = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat_module.S_ISLNK(info.st_mode):
                content = 'link:' + os.readlink(path)
            elif stat_module.S_ISDIR(info.st_mode):
                content = 'dir'
            else:
                with open(path, 'rb') as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
            state[os.path.relpath(path, root)] = (content, info.st_uid, info.st_gid, oct(info.st_mode), info.st_mtime_ns)
    return state


def _nobodys_tree(datadir, relpaths):
    """A data dir owned by nobody, with modes and mtimes that differ from the defaults."""
    import pwd
    nobody = pwd.getpwnam('nobody')
    for number, relpath in enumerate(relpaths):
        path = _touch(datadir, relpath, b'x' * (number + 1))
        os.chmod(path, 0o640)
    for directory, dirs, files in os.walk(datadir, topdown=False):
        for name in files + dirs:
            os.lchown(os.path.join(directory, name), nobody.pw_uid, nobody.pw_gid)
        for name in dirs:
            os.chmod(os.path.join(directory, name), 0o2750)
            os.utime(os.path.join(directory, name), ns=(int(OLD * 1e9), int(OLD * 1e9) - 123456789 * len(directory + name)))
    os.chown(datadir, nobody.pw_uid, nobody.pw_gid)


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to own files as nobody')
def test_quarantine_undo_restores_owner_mode_and_mtime_of_nobodys_tree(tmp_path):
    datadir = str(tmp_path / 'OMERO')
    quarantine = str(tmp_path / 'quarantine')
    _nobodys_tree(datadir, ['Pixels/Dir-999/999001', 'Pixels/Dir-999/999002_pyramid', 'Pixels/Dir-002/Dir-345/2345678',
                            'Files/998', 'Files/Dir-001/1001'])
    before = _tree_state(datadir)
    result = _cleanse_without_database(datadir, [999001], quarantine)
    assert result['errors'] == [] and result['removed'] == 4
    assert not os.path.exists(os.path.join(datadir, 'Pixels/Dir-002'))  # emptied, removed
    # The quarantine keeps the data dir's owners and modes: an rsync -a of it would not hand Pixels/ to root 0700.
    for relpath in ('Pixels', 'Pixels/Dir-002/Dir-345', 'Files/Dir-001'):
        assert _tree_state(quarantine)[relpath][1:] == before[relpath][1:]
    params = {'datadir': datadir, 'quarantine_dir': quarantine, 'max_listed': 100}
    checked = cleanse_run.restore_quarantine(params, check_mode=True)
    assert checked['changed'] and checked['restored'] == 0
    assert sorted(checked['listed']) == ['Files/998', 'Files/Dir-001/1001', 'Pixels/Dir-002/Dir-345/2345678',
                                         'Pixels/Dir-999/999002_pyramid']
    restored = cleanse_run.restore_quarantine(params, check_mode=False)
    assert restored['errors'] == [] and restored['restored'] == 4
    assert _tree_state(datadir) == before
    assert os.listdir(quarantine) == []
    again = cleanse_run.restore_quarantine(params, check_mode=False)
    assert not again['changed'] and again['restored'] == 0


def test_spool_and_report_keep_names_with_newlines_tabs_and_undecodable_bytes(tmp_path):
    names = ['Pixels/.1001_pyramid\udcff.tmp', 'Pixels/.1002_pyramid\n.tmp', 'Pixels/.1003_pyramid\t x.tmp',
             u'Pixels/.1004_pyramid\u00e9.tmp']
    spool = cleanse_results.open_spool()
    for number, relpath in enumerate(names):
        cleanse_results.spool_write(spool, relpath, number, 1001 + number)
    assert list(cleanse_results.spool_read(spool)) == [(relpath, number, 1001 + number) for number, relpath in enumerate(names)]
    report = str(tmp_path / 'report.tsv')
    cleanse_results.write_report(report, spool, {'check_mode': True})
    with open(report, 'rb') as handle:
        lines = handle.read().decode('utf-8').splitlines()
    assert [line.split('\t')[0] for line in lines] == ['Pixels/.1001_pyramid\\xff.tmp', 'Pixels/.1002_pyramid\\n.tmp',
                                                       'Pixels/.1003_pyramid\\t x.tmp', u'Pixels/.1004_pyramid\u00e9.tmp']


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to make a directory of nobody')
@pytest.mark.parametrize('planted', ['nobodys_dir', 'symlink', 'open_mode'])
def test_a_quarantine_dir_another_user_controls_is_refused_before_anything_is_removed(tmp_path, planted):
    import pwd
    datadir = str(tmp_path / 'OMERO')
    source = _touch(datadir, 'Files/998', b'orphan')
    quarantine = str(tmp_path / 'quarantine')
    if planted == 'symlink':
        os.makedirs(str(tmp_path / 'elsewhere'), 0o700)
        os.symlink(str(tmp_path / 'elsewhere'), quarantine)
        expected = 'symlink'
    else:
        os.makedirs(quarantine)
        os.chmod(quarantine, 0o700 if planted == 'nobodys_dir' else 0o755)
        if planted == 'nobodys_dir':
            os.chown(quarantine, pwd.getpwnam('nobody').pw_uid, -1)
        expected = 'owned by uid' if planted == 'nobodys_dir' else 'must be 0700'
    with pytest.raises(OmeroBackupError, match=expected):
        cleanse_remove.check_quarantine_dir(datadir, quarantine, ['Files'])
    assert os.path.exists(source)


def test_a_cleanse_with_nothing_to_quarantine_makes_no_quarantine(tmp_path):
    datadir = str(tmp_path / 'OMERO')
    _touch(datadir, 'Files/998')
    quarantine = str(tmp_path / 'quarantine')
    result = _cleanse_without_database(datadir, [998], quarantine, subdirs=['Files'])
    assert result['removed'] == 0 and result['errors'] == []
    assert not os.path.lexists(quarantine)


def test_an_orphan_with_another_hard_link_quarantines_and_comes_back(tmp_path):
    datadir = str(tmp_path / 'OMERO')
    quarantine = str(tmp_path / 'quarantine')
    source = _touch(datadir, 'Files/Dir-001/1001', b'linked')
    os.link(source, str(tmp_path / 'elsewhere'))  # e.g. an in-place import's hard link
    before = _tree_state(datadir)
    assert _cleanse_without_database(datadir, [], quarantine, subdirs=['Files'])['removed'] == 1
    restored = cleanse_run.restore_quarantine({'datadir': datadir, 'quarantine_dir': quarantine}, check_mode=False)
    assert restored['restored'] == 1 and restored['errors'] == []
    assert _tree_state(datadir) == before
    assert os.stat(source).st_nlink == 2
