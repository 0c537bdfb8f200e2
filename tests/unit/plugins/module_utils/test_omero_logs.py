# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import gzip
import os
import pwd
import time

import pytest

from ansible_collections.omero.backup.plugins.module_utils.logs import descriptor as logs_descriptor
from ansible_collections.omero.backup.plugins.module_utils.logs import rolled as logs_rolled
from ansible_collections.omero.backup.plugins.module_utils.logs.descriptor import Descriptor, configured_log_dir, logs_value_for, resolve_logs_value
from ansible_collections.omero.backup.plugins.module_utils.logs.housekeeping import housekeeping
from ansible_collections.omero.backup.plugins.module_utils.logs.paths import LogsError, refuse_repository_path
from ansible_collections.omero.backup.plugins.module_utils.logs.relocate import relocate
from ansible_collections.omero.backup.plugins.module_utils.logs.rolled import plan_housekeeping, scan_rolled

DAY = 86400
NOW = time.time()

# Shaped like the OMERO.server template: a comment quoting the variable, odd spacing, a second
# variable that mentions OMERO_LOGS, so that a textual edit has something to get wrong.
DESCRIPTOR = """<icegrid>

<!--
    OMERO Grid Application Descriptor
    <variable name="OMERO_LOGS" value="/old/commented/out/"/>
-->

  <application name="OMERO">

    <variable name="OMERO_HOME"    value="."/>
    <variable name="OMERO_ETC"     value="etc/"/>
    <variable name="OMERO_LOGS"    value="var/log/"/>
    <variable name="OMERO_LOGFILE" value="${OMERO_LOGS}$${omero.name}.log"/>
    <!-- Note: you will also need to modify the etc/master.cfg property
         file if you want var/log to be completely unused -->
    <properties id="Profile">
      <property name="omero.example" value="my_value"/>
    </properties>
    <node name="master">
      <server-instance template="BlitzTemplate" index="0" config="default"/>
    </node>
  </application>

</icegrid>
"""

WINDOWS_DESCRIPTOR = DESCRIPTOR.replace('value="var/log/"', "value='${OMERO_HOME}\\\\var\\\\log\\\\'")

# log name -> ages in days of .1, .2, ...
ROLLED = {'Blitz-0.log': (1, 9, 40, 60), 'Indexer-0.log': (2, 50), 'Processor-0.log': (70,)}
LIVE = ('Blitz-0.log', 'Indexer-0.log', 'Processor-0.log', 'PixelData-0.log', 'master.out', 'master.err')


def _write(path, data, age_days=0):
    with open(path, 'wb') as handle:
        handle.write(data)
    stamp = NOW - age_days * DAY
    os.utime(path, (stamp, stamp))


def _content(name, generation):
    return ''.join('2026-11-%02d 09:00:%02d INFO %s generation %d line %d\n' % (1 + generation, i % 60, name, generation, i)
                   for i in range(300)).encode()


@pytest.fixture
def omerodir(tmp_path):
    root = tmp_path / 'OMERO.server'
    for rel in ('etc/grid', 'etc/templates/grid', 'var/log'):
        (root / rel).mkdir(parents=True)
    for rel in ('etc/grid/default.xml', 'etc/templates/grid/default.xml'):
        (root / rel).write_text(DESCRIPTOR)
    for rel in ('etc/grid/windefault.xml', 'etc/templates/grid/windefault.xml'):
        (root / rel).write_text(WINDOWS_DESCRIPTOR)
    logdir = root / 'var' / 'log'
    for name in LIVE:
        _write(str(logdir / name), b'live ' + name.encode() + b'\n')
    for name, ages in ROLLED.items():
        for generation, age in enumerate(ages, 1):
            _write(str(logdir / ('%s.%d' % (name, generation))), _content(name, generation), age)
    (logdir / 'notes.txt').write_text('not a log\n')
    return str(root)


def _listing(directory):
    return sorted(os.listdir(directory))


def _snapshot(directory):
    snap = {}
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, 'rb') as handle:
                snap[name] = (handle.read(), os.stat(path).st_mtime)
    return snap


def _params(omerodir, **kwargs):
    params = {'path': None, 'omerodir': omerodir, 'datadir': None, 'state': 'compressed', 'keep': 0, 'older_than': None}
    params.update(kwargs)
    return params


# --- descriptor --------------------------------------------------------------------------------------------------

def test_descriptor_reads_the_live_variable_not_the_commented_one(omerodir):
    descriptor = Descriptor(os.path.join(omerodir, 'etc/grid/default.xml'))
    assert descriptor.value == 'var/log/'


def test_descriptor_edit_changes_only_the_value(omerodir):
    descriptor = Descriptor(os.path.join(omerodir, 'etc/grid/default.xml'))
    text = descriptor.with_value('/var/log/omero/')
    assert text == DESCRIPTOR.replace('value="var/log/"', 'value="/var/log/omero/"')
    assert '/old/commented/out/' in text


def test_descriptor_edit_keeps_single_quotes_and_escapes(omerodir):
    descriptor = Descriptor(os.path.join(omerodir, 'etc/grid/windefault.xml'))
    assert descriptor.value == '${OMERO_HOME}\\\\var\\\\log\\\\'
    text = descriptor.with_value("/srv/o'logs & more/")
    assert "value='/srv/o&apos;logs &amp; more/'" in text
    assert Descriptor.__new__(Descriptor)._parsed_value(text.encode()) == "/srv/o'logs & more/"


@pytest.mark.parametrize('broken, message', [
    (DESCRIPTOR.replace('</node>', ''), 'not well-formed XML (line'),
    (DESCRIPTOR.replace('    <variable name="OMERO_LOGS"    value="var/log/"/>\n', ''), 'has 0 <variable name="OMERO_LOGS">'),
    (DESCRIPTOR.replace('<variable name="OMERO_ETC"', '<variable name="OMERO_LOGS"'), 'has 2 <variable name="OMERO_LOGS">'),
    (DESCRIPTOR.replace('value="var/log/"', ''), 'has no value attribute'),
])
def test_malformed_descriptor_is_a_clear_error(tmp_path, broken, message):
    path = tmp_path / 'default.xml'
    path.write_text(broken)
    with pytest.raises(LogsError) as caught:
        Descriptor(str(path), 'etc/grid/default.xml')
    assert message in str(caught.value)
    assert 'etc/grid/default.xml' in str(caught.value)


def test_non_utf8_descriptor_is_refused(tmp_path):
    path = tmp_path / 'default.xml'
    path.write_bytes(DESCRIPTOR.replace('Descriptor', 'Descripteur \xe9').encode('latin-1'))
    with pytest.raises(LogsError, match='not UTF-8'):
        Descriptor(str(path))


def test_logs_value_needs_trailing_slash_and_rejects_dollar():
    assert logs_value_for('/var/log/omero') == '/var/log/omero/'
    assert logs_value_for('/var/log/omero//') == '/var/log/omero/'
    assert logs_value_for('var/log') == 'var/log/'
    for bad in ('/', '', '/srv/$HOME/logs', '/srv/a\nb'):
        with pytest.raises(LogsError):
            logs_value_for(bad)


def test_resolve_logs_value_relative_to_omerodir():
    assert resolve_logs_value('/opt/omero/server/OMERO.server', 'var/log/') == '/opt/omero/server/OMERO.server/var/log'
    assert resolve_logs_value('/o', '/var/log/omero/') == '/var/log/omero'
    assert resolve_logs_value('/o', '${OMERO_HOME}/var/log/') == '/o/var/log'
    with pytest.raises(LogsError, match='cannot resolve'):
        resolve_logs_value('/o', '${OTHER}/log/')


def test_configured_log_dir_prefers_the_generated_descriptor(omerodir):
    assert configured_log_dir(omerodir) == (os.path.join(omerodir, 'var/log'), 'etc/grid/default.xml')
    os.unlink(os.path.join(omerodir, 'etc/grid/default.xml'))
    assert configured_log_dir(omerodir)[1] == 'etc/templates/grid/default.xml'
    os.unlink(os.path.join(omerodir, 'etc/templates/grid/default.xml'))
    assert configured_log_dir(omerodir) == (os.path.join(omerodir, 'var/log'), 'default')


# --- refusing repository paths ---------------------------------------------------------------------------------

def test_managed_repository_paths_are_refused(tmp_path):
    datadir = tmp_path / 'OMERO'
    managed = datadir / 'ManagedRepository' / 'user_1' / '2026-11' / '20'
    managed.mkdir(parents=True)
    (datadir / '.omero' / 'repository' / 'uuid').mkdir(parents=True)
    with pytest.raises(LogsError, match='ManagedRepository'):
        refuse_repository_path(str(managed), str(datadir))
    with pytest.raises(LogsError, match='OMERO repository'):
        refuse_repository_path(str(datadir / 'Files'), None)


def test_managed_repository_behind_a_symlink_is_refused(tmp_path):
    store = tmp_path / 'big-store' / 'imports'
    store.mkdir(parents=True)
    datadir = tmp_path / 'OMERO'
    datadir.mkdir()
    os.symlink(str(tmp_path / 'big-store'), str(datadir / 'ManagedRepository'))
    with pytest.raises(LogsError, match='inside'):
        refuse_repository_path(str(store), str(datadir))
    with pytest.raises(LogsError, match='ManagedRepository'):
        refuse_repository_path(str(datadir / 'ManagedRepository' / 'imports'), str(datadir))


def test_ordinary_log_dir_is_accepted(tmp_path):
    (tmp_path / 'OMERO' / 'ManagedRepository').mkdir(parents=True)
    (tmp_path / 'var' / 'log').mkdir(parents=True)
    refuse_repository_path(str(tmp_path / 'var' / 'log'), str(tmp_path / 'OMERO'))


# --- housekeeping ----------------------------------------------------------------------------------------------

def test_scan_sees_only_rolled_files(omerodir):
    logs = scan_rolled(os.path.join(omerodir, 'var/log'))
    assert sorted(logs) == sorted(ROLLED)
    assert [entry.name for entry in logs['Blitz-0.log']] == ['Blitz-0.log.1', 'Blitz-0.log.2', 'Blitz-0.log.3', 'Blitz-0.log.4']


def test_plan_keep_and_older_than(omerodir):
    logs = scan_rolled(os.path.join(omerodir, 'var/log'))
    plan = plan_housekeeping(logs, 'absent', keep=1, older_than=30 * DAY, now=NOW)
    assert [e.name for e in plan['Blitz-0.log']['act']] == ['Blitz-0.log.3', 'Blitz-0.log.4']
    assert [e.name for e in plan['Indexer-0.log']['act']] == ['Indexer-0.log.2']
    assert plan['Processor-0.log']['act'] == []
    with pytest.raises(LogsError):
        plan_housekeeping(logs, 'absent', keep=-1)


def test_compress_with_keep_leaves_exactly_the_expected_files(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    before = _snapshot(logdir)
    result = housekeeping(_params(omerodir, keep=2), now=NOW)
    assert result['changed'] is True
    assert result['path'] == logdir and result['path_source'] == 'etc/grid/default.xml'
    names = _listing(logdir)
    for name in LIVE + ('notes.txt', 'Blitz-0.log.1', 'Blitz-0.log.2', 'Indexer-0.log.1', 'Indexer-0.log.2', 'Processor-0.log.1'):
        assert name in names
        assert _snapshot(logdir)[name] == before[name]
    gz = [name for name in names if name.endswith('.gz')]
    assert len(gz) == 2 and all(name.startswith('Blitz-0.log.') for name in gz)
    assert 'Blitz-0.log.3' not in names and 'Blitz-0.log.4' not in names
    assert result['logs']['Blitz-0.log']['files'] == ['Blitz-0.log.3', 'Blitz-0.log.4']
    assert sorted(result['logs']['Blitz-0.log']['created']) == sorted(gz)
    assert result['bytes_freed'] > 0
    for original in ('Blitz-0.log.3', 'Blitz-0.log.4'):
        data, mtime = before[original]
        stamp = logs_rolled.stamp(mtime)
        target = os.path.join(logdir, 'Blitz-0.log.%s.gz' % stamp)
        with gzip.open(target, 'rb') as handle:
            assert handle.read() == data
        assert int(os.stat(target).st_mtime) == int(mtime)

    again = housekeeping(_params(omerodir, keep=2), now=NOW)
    assert again['changed'] is False
    assert again['bytes_freed'] == 0


def test_compress_keeps_mode_and_owner(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    os.chmod(os.path.join(logdir, 'Processor-0.log.1'), 0o640)
    result = housekeeping(_params(omerodir), now=NOW)
    created = result['logs']['Processor-0.log']['created'][0]
    st = os.stat(os.path.join(logdir, created))
    assert oct(st.st_mode & 0o777) == oct(0o640)
    assert st.st_uid == os.geteuid()


def test_rollover_after_compression_does_not_collide(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    housekeeping(_params(omerodir), now=NOW)
    # The server rolls again: a new .1 appears; an old .gz stays.
    _write(os.path.join(logdir, 'Processor-0.log.1'), _content('Processor-0.log', 9), 0.5)
    result = housekeeping(_params(omerodir), now=NOW)
    assert result['changed'] is True
    assert len([n for n in _listing(logdir) if n.startswith('Processor-0.log.') and n.endswith('.gz')]) == 2


def test_same_second_generations_get_distinct_names(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    for generation in (1, 2):
        _write(os.path.join(logdir, 'Tables-0.log.%d' % generation), _content('Tables-0.log', generation), 3)
    result = housekeeping(_params(omerodir), now=NOW)
    created = result['logs']['Tables-0.log']['created']
    assert len(set(created)) == 2
    assert any(name.endswith('-2.gz') for name in created)


def test_interrupted_compression_is_finished_without_duplicate(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    original = os.path.join(logdir, 'Processor-0.log.1')
    with open(original, 'rb') as handle:
        data = handle.read()
    stamp = logs_rolled.stamp(os.stat(original).st_mtime)
    # As if a run stopped after publishing the .gz and before removing the original.
    with gzip.open(os.path.join(logdir, 'Processor-0.log.%s.gz' % stamp), 'wb') as handle:
        handle.write(data)
    result = housekeeping(_params(omerodir), now=NOW)
    report = result['logs']['Processor-0.log']
    assert report['files'] == ['Processor-0.log.1']
    assert report['created'] == ['Processor-0.log.%s.gz' % stamp]
    assert [n for n in _listing(logdir) if n.startswith('Processor-0.log.')] == ['Processor-0.log.%s.gz' % stamp]


def test_file_rolled_between_scan_and_action_is_skipped(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    logs = scan_rolled(logdir)
    entry = logs['Processor-0.log'][0]
    _write(entry.path, b'a new generation rolled in\n', 0)
    assert logs_rolled.delete(entry) is not None
    gz_name, freed, reason = logs_rolled.compress(entry)
    assert gz_name is None and reason
    assert os.path.exists(entry.path)


def test_delete_with_older_than(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    before = _snapshot(logdir)
    result = housekeeping(_params(omerodir, state='absent', older_than='30d'), now=NOW)
    names = _listing(logdir)
    expected_gone = {'Blitz-0.log.3', 'Blitz-0.log.4', 'Indexer-0.log.2', 'Processor-0.log.1'}
    assert set(before) - set(names) == expected_gone
    assert result['bytes_freed'] == sum(len(before[name][0]) for name in expected_gone)
    assert housekeeping(_params(omerodir, state='absent', older_than='30d'), now=NOW)['changed'] is False


def test_delete_removes_compressed_files_too(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    housekeeping(_params(omerodir, keep=1), now=NOW)
    housekeeping(_params(omerodir, state='absent', keep=1), now=NOW)
    rolled = [n for n in _listing(logdir) if logs_rolled.ROLLED.match(n)]
    assert sorted(rolled) == ['Blitz-0.log.1', 'Indexer-0.log.1', 'Processor-0.log.1']
    for name in LIVE + ('notes.txt',):
        assert name in _listing(logdir)


def test_check_mode_changes_nothing(omerodir):
    logdir = os.path.join(omerodir, 'var/log')
    before = _snapshot(logdir)
    for state in ('compressed', 'absent'):
        result = housekeeping(_params(omerodir, state=state), check_mode=True, now=NOW)
        assert result['changed'] is True
        assert result['logs']['Blitz-0.log']['files'] == ['Blitz-0.log.1', 'Blitz-0.log.2', 'Blitz-0.log.3', 'Blitz-0.log.4']
        assert _snapshot(logdir) == before
    assert result['bytes_freed'] == sum(len(data) for name, (data, mtime) in before.items() if logs_rolled.ROLLED.match(name))
    assert 'Blitz-0.log.4\n' in result['diff']['before'] and 'Blitz-0.log.4' not in result['diff']['after']


def test_housekeeping_refuses_managed_repository(tmp_path):
    managed = tmp_path / 'OMERO' / 'ManagedRepository' / 'u_1'
    managed.mkdir(parents=True)
    _write(str(managed / 'import.log.1'), b'import log, a database object\n', 100)
    with pytest.raises(LogsError, match='ManagedRepository'):
        housekeeping(_params(None, path=str(managed), datadir=str(tmp_path / 'OMERO'), state='absent'))
    assert os.path.exists(str(managed / 'import.log.1'))


def test_housekeeping_reads_a_relocated_log_dir(omerodir, tmp_path):
    relocated = tmp_path / 'relocated'
    relocated.mkdir()
    _write(str(relocated / 'Blitz-0.log.1'), b'x' * 100, 5)
    path = os.path.join(omerodir, 'etc/grid/default.xml')
    with open(path) as handle:
        text = handle.read()
    with open(path, 'w') as handle:
        handle.write(text.replace('value="var/log/"', 'value="%s/"' % relocated))
    result = housekeeping(_params(omerodir, state='absent'), now=NOW)
    assert result['path'] == str(relocated)
    assert _listing(str(relocated)) == []


def test_bad_older_than_is_a_clear_error(omerodir):
    with pytest.raises(Exception, match='cannot read duration'):
        housekeeping(_params(omerodir, older_than='ten days'))


# --- relocation ------------------------------------------------------------------------------------------------

def _me():
    return pwd.getpwuid(os.geteuid()).pw_name


def _relocate_params(omerodir, path, **kwargs):
    params = {'path': path, 'omerodir': omerodir, 'datadir': None, 'user': _me(), 'mode': '0750', 'move_logs': False}
    params.update(kwargs)
    return params


def _read(omerodir, rel):
    with open(os.path.join(omerodir, rel), 'rb') as handle:
        return handle.read()


def test_relocate_edits_every_descriptor_and_is_idempotent(omerodir, tmp_path):
    target = str(tmp_path / 'logs' / 'omero')
    result = relocate(_relocate_params(omerodir, target))
    assert result['changed'] is True and result['created'] is True
    assert result['value'] == target + '/'
    assert result['descriptors'] == list(logs_descriptor.DESCRIPTORS)
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o750)
    for rel in ('etc/grid/default.xml', 'etc/templates/grid/default.xml'):
        assert _read(omerodir, rel) == DESCRIPTOR.replace('value="var/log/"', 'value="%s/"' % target).encode()
    for rel in ('etc/grid/windefault.xml', 'etc/templates/grid/windefault.xml'):
        assert Descriptor(os.path.join(omerodir, rel)).value == target + '/'
    assert configured_log_dir(omerodir) == (target, 'etc/grid/default.xml')
    again = relocate(_relocate_params(omerodir, target))
    assert again['changed'] is False and again['descriptors'] == [] and again['diff'] == []


def test_relocate_check_mode_and_diff(omerodir, tmp_path):
    target = str(tmp_path / 'omero-logs')
    before = dict((rel, _read(omerodir, rel)) for rel in logs_descriptor.DESCRIPTORS)
    result = relocate(_relocate_params(omerodir, target, move_logs=True), check_mode=True)
    assert result['changed'] is True
    assert not os.path.exists(target)
    assert dict((rel, _read(omerodir, rel)) for rel in logs_descriptor.DESCRIPTORS) == before
    texts = [d for d in result['diff'] if d['before_header'] == 'etc/templates/grid/default.xml']
    assert texts and 'value="var/log/"' in texts[0]['before'] and 'value="%s/"' % target in texts[0]['after']
    assert 'Blitz-0.log' in result['moved'] and 'master.out' not in result['moved']


def test_relocate_with_malformed_descriptor_changes_nothing(omerodir, tmp_path):
    broken = os.path.join(omerodir, 'etc/grid/windefault.xml')
    with open(broken, 'w') as handle:
        handle.write(WINDOWS_DESCRIPTOR.replace('</application>', ''))
    before = dict((rel, _read(omerodir, rel)) for rel in logs_descriptor.DESCRIPTORS)
    logs_before = _snapshot(os.path.join(omerodir, 'var/log'))
    target = str(tmp_path / 'omero-logs')
    with pytest.raises(LogsError, match='etc/grid/windefault.xml is not well-formed XML'):
        relocate(_relocate_params(omerodir, target, move_logs=True))
    assert dict((rel, _read(omerodir, rel)) for rel in logs_descriptor.DESCRIPTORS) == before
    assert _snapshot(os.path.join(omerodir, 'var/log')) == logs_before
    assert not os.path.exists(target)


def test_relocate_moves_logs_but_not_master_files(omerodir, tmp_path):
    logdir = os.path.join(omerodir, 'var/log')
    before = _snapshot(logdir)
    target = str(tmp_path / 'omero-logs')
    result = relocate(_relocate_params(omerodir, target, move_logs=True))
    assert sorted(_listing(logdir)) == ['master.err', 'master.out', 'notes.txt']
    moved = _snapshot(target)
    assert sorted(moved) == sorted(result['moved'])
    for name, value in moved.items():
        assert value == before[name]
    assert relocate(_relocate_params(omerodir, target, move_logs=True))['changed'] is False


def test_relocate_refuses_open_logs(omerodir, tmp_path):
    logdir = os.path.join(omerodir, 'var/log')
    target = str(tmp_path / 'omero-logs')
    with open(os.path.join(logdir, 'Blitz-0.log'), 'ab'):
        with pytest.raises(LogsError, match=r'open \(stop OMERO.server first\): Blitz-0.log \(pid %d\)' % os.getpid()):
            relocate(_relocate_params(omerodir, target, move_logs=True))
    assert not os.path.exists(target)
    assert Descriptor(os.path.join(omerodir, 'etc/grid/default.xml')).value == 'var/log/'


def test_relocate_refuses_clashing_logs(omerodir, tmp_path):
    target = tmp_path / 'omero-logs'
    target.mkdir()
    (target / 'Blitz-0.log.1').write_text('something else\n')
    with pytest.raises(LogsError, match='both exist with different content'):
        relocate(_relocate_params(omerodir, str(target), move_logs=True))
    assert Descriptor(os.path.join(omerodir, 'etc/templates/grid/default.xml')).value == 'var/log/'


def test_relocate_needs_the_template_and_a_known_user(omerodir, tmp_path):
    with pytest.raises(LogsError, match='does not exist on this host'):
        relocate(_relocate_params(omerodir, str(tmp_path / 'x'), user='no-such-omero-user'))
    with pytest.raises(LogsError, match='octal'):
        relocate(_relocate_params(omerodir, str(tmp_path / 'x'), mode='rwx'))
    os.unlink(os.path.join(omerodir, 'etc/templates/grid/default.xml'))
    with pytest.raises(LogsError, match='not an OMERO.server directory'):
        relocate(_relocate_params(omerodir, str(tmp_path / 'x')))


def test_relocate_back_to_relative_default(omerodir, tmp_path):
    target = str(tmp_path / 'omero-logs')
    relocate(_relocate_params(omerodir, target, move_logs=True))
    result = relocate(_relocate_params(omerodir, 'var/log', move_logs=True))
    assert result['value'] == 'var/log/'
    assert result['path'] == os.path.join(omerodir, 'var/log')
    assert _read(omerodir, 'etc/grid/default.xml') == DESCRIPTOR.encode()
    assert 'Blitz-0.log.1' in _listing(os.path.join(omerodir, 'var/log'))


def test_descriptor_edit_keeps_crlf_bom_and_attribute_order(tmp_path):
    text = '\ufeff' + DESCRIPTOR.replace('<variable name="OMERO_LOGS"    value="var/log/"/>',
                                         '<variable value = "var/log/"\n      name="OMERO_LOGS" />').replace('\n', '\r\n')
    path = tmp_path / 'default.xml'
    path.write_bytes(text.encode('utf-8'))
    descriptor = Descriptor(str(path))
    assert descriptor.value == 'var/log/'
    edited = descriptor.with_value('/var/log/omero/').encode('utf-8')
    assert edited == text.replace('value = "var/log/"', 'value = "/var/log/omero/"').encode('utf-8')


def test_default_path_needs_an_omerodir(tmp_path):
    with pytest.raises(LogsError, match='OMERODIR .* does not exist'):
        housekeeping(_params(str(tmp_path / 'absent')))
