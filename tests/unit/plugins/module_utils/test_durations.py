# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one duration grammar (durations.parse_duration), and every duration option of every module held to it.

The per-module tests run each module's real main() and real AnsibleModule in this process; the only seam is a
wrapper around the AnsibleModule class that reads the argument spec the module builds.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib
import os
import re

import pytest
import yaml

from ansible_collections.omero.backup.plugins.module_utils.base.durations import DURATION_OPTIONS, parse_duration, rdiff_backup_interval
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import RdiffError, interval_seconds, resolve_at
from helpers.modules import import_module, main_arguments, printed_result, set_module_args

MODULES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins', 'modules')
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith('.py') and not name.startswith('_'))
MINUTE, DAY = 60, 86400
# Options that name a point in time, one spelling of which is a duration back from now (rdiff.resolve_at, which
# reads it with interval_seconds, the same grammar): tested with resolve_at below.
POINT_IN_TIME_OPTIONS = (('datadir_restore', 'at'), ('datadir_restore_paths', 'at'), ('layout_restore', 'at'))
# An option named like one of these holds a length of time.
DURATION_NAME = re.compile(r'(_age|_for|_than|interval|period|timeout|delay|window|_after|_before|retention)\Z')


@pytest.mark.parametrize('text, seconds', [
    ('1m', MINUTE), ('1M', 30 * DAY), ('90m', 90 * MINUTE), ('6M', 180 * DAY), ('1m1M', 30 * DAY + MINUTE),
    ('1s', 1), ('1S', 1), ('20h', 20 * 3600), ('20H', 20 * 3600), ('2d', 2 * DAY), ('2D', 2 * DAY),
    ('8w', 56 * DAY), ('8W', 56 * DAY), ('1y', 365 * DAY), ('1Y', 365 * DAY), ('1d12h', 36 * 3600),
    (' 1d 12h ', 36 * 3600), ('1 d', DAY), ('45', 45), ('0', 0), (30, 30), (0, 0),
])
def test_one_grammar_with_rdiff_backup_units(text, seconds):
    assert parse_duration(text) == seconds
    # rdiff.interval_seconds (keep_increments_for, datadir_restore's at) is the same grammar, not a second copy.
    assert interval_seconds(text) == seconds


def test_one_minute_and_one_month():
    """The bug this grammar closes: common lowercased units, so min_age 1M was one minute, while
    keep_increments_for 1M was thirty days."""
    assert parse_duration('1m') == 60
    assert parse_duration('1M') == 30 * 86400 == interval_seconds('1M')


@pytest.mark.parametrize('text, extra', [
    ('1min', 'minutes are m, months M'), ('2 months', 'minutes are m, months M'), ('1mo', 'minutes are m, months M'),
    ('1.5h', ''), ('-1d', ''), ('', ''), ('M', ''), ('1x', ''), ('20h later', ''), ('\u0661\u0662', ''), ('1d-', ''),
    (-5, ''), (1.5, ''), (True, ''), ([1], ''),
])
def test_other_spellings_are_refused_with_a_clear_message(text, extra):
    with pytest.raises(OmeroBackupError) as error:
        parse_duration(text)
    message = str(error.value)
    assert message.startswith('cannot read duration %r' % (text,))
    assert 'm (minutes)' in message and 'M (months of 30 days)' in message and extra in message
    with pytest.raises(RdiffError):
        interval_seconds(text, 'keep_increments_for')


def test_the_option_is_named_in_the_message():
    with pytest.raises(RdiffError, match=r"cannot read duration '1mo' \(keep_increments_for\)"):
        interval_seconds('1mo', 'keep_increments_for')


def test_what_rdiff_backup_is_given_is_seconds():
    """rdiff-backup reads 'NNNs' as we do; the text the user gave is never passed on."""
    assert rdiff_backup_interval(parse_duration('1M')) == '2592000s'
    assert rdiff_backup_interval(parse_duration('90m')) == '5400s'


def test_a_restore_at_a_duration_back_reads_it_in_the_same_grammar():
    now = 1000 * DAY
    increments = [now - 31 * DAY, now - 2 * DAY, now - 30]
    assert resolve_at('1M', increments, now) == now - 31 * DAY
    assert resolve_at('1m', increments, now) == now - 2 * DAY
    with pytest.raises(RdiffError):
        resolve_at('1min', increments, now)


# ---------------------------------------------------------------------------
# Every module's duration options
# ---------------------------------------------------------------------------

def _argument_spec(name, monkeypatch):
    return main_arguments(name, monkeypatch)['argument_spec']


def _run(name, args, monkeypatch, capsys):
    """The JSON the module's real main() exits with."""
    module = import_module(name)
    set_module_args(monkeypatch, args)
    capsys.readouterr()
    try:
        module.main()
    except SystemExit:
        pass
    finally:
        monkeypatch.undo()
    return printed_result(capsys.readouterr().out)


def test_the_list_of_duration_options_names_real_options(monkeypatch):
    for name, option in DURATION_OPTIONS:
        spec = _argument_spec(name, monkeypatch)
        assert spec[option].get('type') == 'str', (name, option)


def _documented_options(name):
    """The module's documented options, with those of its omero.backup doc fragments."""
    docs = yaml.safe_load(import_module(name).DOCUMENTATION)
    options = dict(docs.get('options') or {})
    for fragment in docs.get('extends_documentation_fragment') or []:
        if fragment.startswith('omero.backup.'):
            fragment_name, _dot, variant = fragment[len('omero.backup.'):].partition('.')
            module = importlib.import_module('ansible_collections.omero.backup.plugins.doc_fragments.' + fragment_name)
            text = getattr(module.ModuleDocFragment, variant.upper() or 'DOCUMENTATION')
            options.update(yaml.safe_load(text).get('options') or {})
    return docs, options


@pytest.mark.parametrize('name', MODULES)
def test_every_option_that_holds_a_length_of_time_is_a_duration_or_whole_seconds(name, monkeypatch):
    """A new duration option must join durations.DURATION_OPTIONS (and so the tests below), or be an int of seconds."""
    spec = _argument_spec(name, monkeypatch)
    docs, documented = _documented_options(name)
    if any(module == name for module, _option in DURATION_OPTIONS):
        assert 'omero.backup.durations' in docs['extends_documentation_fragment'], 'the notes on durations are missing'
    for option_name, option in spec.items():
        if option.get('type') in ('list', 'dict', 'bool', 'path') or (name, option_name) in POINT_IN_TIME_OPTIONS:
            continue
        registered = (name, option_name) in DURATION_OPTIONS
        described = ' '.join(documented.get(option_name, {}).get('description', []))
        if registered:
            assert 'duration' in described, (name, option_name)
        elif DURATION_NAME.search(option_name) or re.search(r'\bduration\b', described):
            assert option.get('type') == 'int' and re.search(r'\bSeconds\b|\bseconds\b', described), (
                '%s %s holds a length of time: add it to durations.DURATION_OPTIONS and read it with parse_duration, '
                'or make it an int of seconds' % (name, option_name))


def _args_reaching(name, option_name, value, tmp_path):
    """Arguments with which the module reads ``option_name`` before it touches a database, rdiff-backup or a file."""
    src = tmp_path / 'src'
    src.mkdir(exist_ok=True)
    base = {
        'backup_set': dict(state='pruned', store_path=str(tmp_path / 'store'), keep=1, _ansible_check_mode=True),
        'cleanse': dict(datadir=str(src), _ansible_check_mode=True),
        'datadir_backup': dict(src=str(src), dest=str(tmp_path / 'repo'), _ansible_check_mode=True),
        'datadir_restore': dict(src=str(tmp_path / 'repo'), dest=str(tmp_path / 'dest'), _ansible_check_mode=True),
        'datadir_restore_paths': dict(src=str(tmp_path / 'repo'), dest=str(tmp_path / 'dest'), paths=['Files'], _ansible_check_mode=True),
        'layout_restore': dict(src=str(tmp_path / 'repo'), dest=str(tmp_path / 'dest'), _ansible_check_mode=True),
        'db_dump': dict(dest=str(tmp_path / 'dumps'), _ansible_check_mode=True),
        'logs': dict(path=str(src), _ansible_check_mode=True),
        'run_lock': dict(run_id='r', lock_dir=str(tmp_path / 'locks'), _ansible_check_mode=True),
    }[name]
    return dict(base, **{option_name: value})


@pytest.mark.parametrize('name, option_name', DURATION_OPTIONS)
def test_every_duration_option_goes_through_the_grammar(name, option_name, tmp_path, monkeypatch, capsys):
    """The real module refuses a spelling outside the grammar with the grammar's own message, and reads 1M as a
    month: whatever the option, one grammar."""
    failed = _run(name, _args_reaching(name, option_name, '1min', tmp_path), monkeypatch, capsys)
    assert failed.get('failed') and "cannot read duration '1min'" in failed['msg'], failed
    assert 'minutes are m, months M' in failed['msg']


def test_a_month_on_a_deleting_option_is_a_month(tmp_path, monkeypatch, capsys):
    """The data loss of issue 12 item 11, on a real module: logs state=absent older_than=1M must not delete a rolled
    log two days old (read as one minute, it would)."""
    logs = tmp_path / 'log'
    logs.mkdir()
    (logs / 'Blitz-0.log').write_bytes(b'live\n')
    rolled = logs / 'Blitz-0.log.1'
    rolled.write_bytes(b'rolled two days ago\n')
    two_days_ago = os.stat(str(rolled)).st_mtime - 2 * DAY
    os.utime(str(rolled), (two_days_ago, two_days_ago))
    args = dict(path=str(logs), state='absent', _ansible_check_mode=True)
    month = _run('logs', dict(args, older_than='1M'), monkeypatch, capsys)
    assert not month.get('failed'), month
    assert month['logs'].get('Blitz-0.log', {}).get('files', []) == []
    minute = _run('logs', dict(args, older_than='1m'), monkeypatch, capsys)
    assert minute['logs']['Blitz-0.log']['files'] == ['Blitz-0.log.1']
    assert rolled.exists()


@pytest.mark.parametrize('given, seconds', [('1M', '2592000s'), ('90m', '5400s'), ('8w', '4838400s')])
def test_rdiff_backup_is_given_the_duration_in_seconds(tmp_path, given, seconds):
    """keep_increments_for reaches rdiff-backup (real, check mode) as NNNs, never as the text given, so rdiff-backup
    (whose own units have no lower-case w or d, and where a bare number is a time, not a length) cannot read it
    differently."""
    from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner
    from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir
    src = tmp_path / 'OMERO'
    (src / 'Files').mkdir(parents=True)
    (src / 'Files' / '7').write_bytes(b'attachment')
    result = backup_datadir(dict(src=str(src), dest=str(tmp_path / 'repo'), verify=False, exclude=None,
                                 keep_increments_for=given), subprocess_runner, check_mode=True)
    removals = [argv for argv in result['commands'] if 'remove' in argv]
    assert removals and removals[0][removals[0].index('--older-than') + 1] == seconds


def test_the_grammar_is_documented_once_in_a_fragment_ansible_doc_can_merge():
    from ansible_collections.omero.backup.plugins.doc_fragments.durations import ModuleDocFragment
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)
    assert 'options' in doc  # ansible-doc refuses a fragment without options or attributes
    (note,) = doc['notes']
    for unit in ('C(m) minutes', 'C(M) months of 30 days', 'C(y) years of 365 days', 'V(1m) is one minute'):
        assert unit in note
