# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rdiff-backup command building and output parsing (no rdiff-backup run here)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import os
import re
import shlex

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base import locking
from ansible_collections.omero.backup.plugins.module_utils.tools import rdiff
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import (Location, Outcome, Rdiff, RdiffError, glob_escape, interval_seconds,
                                                                               lock_path, parse_increments, parse_location, parse_statistics, parse_verify,
                                                                               remote_schema, resolve_at)

STATISTICS = '''NOTE: Starting increment operation from source path src to destination path dst
--------------[ Session statistics ]--------------
StartTime 1795680658.00 (Thu Nov 26 08:10:58 2026)
EndTime 1795680658.58 (Thu Nov 26 08:10:58 2026)
ElapsedTime 0.58 (0.58 seconds)
SourceFiles 9
SourceFileSize 6 (6 bytes)
NewFiles 8
ChangedFiles 1
DeletedFiles 0
Errors 0
--------------------------------------------------
'''

VERIFY_BAD = '''WARNING: Computed SHA1 digest of file d005/f105 '949dc65a80e12f328b19289ea53abf060dab2fe5' doesn't match \
recorded digest of '2f51d1f3783e7410c3c5deabf60a36d1bc3153fe'. Your backup repository may be corrupted!
ERROR: Verification found 1 potentially corrupted files
WARNING: Action verify emitted warnings, see previous messages for details
'''


def test_parse_location_local_and_remote():
    local = parse_location('/mnt/backup//omero/')
    assert not local.is_remote and local.path == '/mnt/backup/omero' and local.spec == '/mnt/backup/omero'
    remote = parse_location('omero-backup@backup.example.org::/backup/omero')
    assert remote.is_remote and remote.host == 'omero-backup@backup.example.org' and remote.path == '/backup/omero'
    assert remote.parent().spec == 'omero-backup@backup.example.org::/backup'
    assert remote.child('.omero/repository').spec == 'omero-backup@backup.example.org::/backup/omero/.omero/repository'


@pytest.mark.parametrize('bad', ['', 'relative/path', 'host::relative', 'bad host::/x', 'h;rm -rf /::/x', 'a::/b::/c',
                                 '$(id)::/x'])
def test_parse_location_rejects(bad):
    with pytest.raises(RdiffError):
        parse_location(bad)


def test_remote_schema_quotes_and_uses_placeholder():
    schema = remote_schema(ssh_user='backup user', ssh_key='/keys/my key', ssh_port=2222,
                           ssh_options=['UserKnownHostsFile=/etc/omero backup/known_hosts'])
    words = shlex.split(schema)
    assert words[:2] == ['ssh', '-C']
    assert words[words.index('-p') + 1] == '2222'
    assert words[words.index('-i') + 1] == '/keys/my key'
    assert words[words.index('-l') + 1] == 'backup user'
    assert words[-3:] == ['{h}', 'rdiff-backup', 'server']
    options = [words[i + 1] for i, w in enumerate(words) if w == '-o']
    # BatchMode first (cannot be overridden), the operator's options before our ConnectTimeout default.
    assert options == ['BatchMode=yes', 'UserKnownHostsFile=/etc/omero backup/known_hosts', 'ConnectTimeout=30']
    # rdiff-backup accepts only {h} (and version) placeholders.
    assert re.findall(r'{[^}]*}', schema) == ['{h}']


def test_remote_schema_remote_command_and_braces():
    assert remote_schema(remote_command='sudo rdiff-backup', compression=False).endswith("{h} sudo rdiff-backup server")
    with pytest.raises(RdiffError):
        remote_schema(ssh_key='/keys/{x}')


def test_argv_adds_schema_only_for_remote_and_force_first():
    runner = None
    tool = Rdiff(runner, schema='ssh {h} rdiff-backup server')
    local = Location(None, '/repo')
    remote = Location('host', '/repo')
    assert tool.argv(['verify'], [local]) == ['rdiff-backup', 'verify', '/repo']
    assert tool.argv(['remove', 'increments', '--older-than', '60s'], [remote], force=True) == [
        'rdiff-backup', '--force', '--remote-schema', 'ssh {h} rdiff-backup server', 'remove', 'increments',
        '--older-than', '60s', 'host::/repo']


def test_lock_path_local_sibling_and_remote_keyed(tmp_path):
    assert lock_path(Location(None, '/mnt/backup/omero')) == '/mnt/backup/.omero.omero-backup.lock'
    first = lock_path(Location('a', '/backup'), lock_dir=str(tmp_path))
    second = lock_path(Location('b', '/backup'), lock_dir=str(tmp_path))
    assert first != second and os.path.dirname(first) == str(tmp_path)
    assert first == lock_path(Location('a', '/backup'), lock_dir=str(tmp_path))
    # Without lock_dir: the collection's one lock directory rule (locking.default_lock_dir), never /run/lock or /tmp.
    assert os.path.dirname(lock_path(Location('a', '/backup'))) == locking.default_lock_dir()


@pytest.mark.parametrize('rc,failed,warned', [
    (0, False, False), (1, True, False), (2, False, True), (4, True, False), (8, False, True), (10, False, True),
    (6, True, False), (16, True, False), (-9, True, False)])
def test_outcome_maps_rc_bits(rc, failed, warned):
    outcome = Outcome('backup', rc, '', '')
    assert (outcome.failed, outcome.warned) == (failed, warned)


def test_outcome_detects_regress_and_describes():
    outcome = Outcome('backup', 2, 'NOTE: Regressing to date/time x\n',
                      'WARNING: Previous backup seems to have failed, regressing destination now\n')
    assert outcome.regressed and not outcome.failed
    assert 'regressing destination now' in outcome.describe()


def test_parse_statistics_and_increments():
    stats = parse_statistics(STATISTICS)
    assert stats['SourceFiles'] == 9 and stats['SourceFileSize'] == 6 and stats['ElapsedTime'] == 0.58
    assert 'StartTime' in stats and 'NOTE' not in stats
    assert parse_increments('1795680658 directory\n1795680553 directory\n\n') == [1795680553, 1795680658]


def test_parse_verify_counts_files():
    count, files = parse_verify(Outcome('verify', 2, VERIFY_BAD, ''))
    assert count == 1 and files == ['d005/f105']
    assert parse_verify(Outcome('verify', 0, 'NOTE: All files verified successfully\n', '')) == (0, [])


def test_glob_escape():
    assert glob_escape('/data/[x]*?\\') == '/data/\\[x\\]\\*\\?\\\\'


def test_interval_seconds_follows_rdiff_units():
    assert interval_seconds('8W') == 8 * 7 * 86400
    assert interval_seconds('90m') == 90 * 60
    assert interval_seconds('1M') == 30 * 86400
    assert interval_seconds('1D12h') == 36 * 3600
    assert interval_seconds('3600') == 3600
    for bad in ('8 weeks', 'W', '-1D', '1x'):
        with pytest.raises(RdiffError):
            interval_seconds(bad)


def test_resolve_at_forms():
    increments = [1000000000, 1000086400, 1000172800]
    now = 1000172800 + 3600
    assert resolve_at(None, increments) == increments[-1]
    assert resolve_at('now', increments) == increments[-1]
    assert resolve_at('0B', increments) == increments[-1]
    assert resolve_at('2B', increments) == increments[0]
    assert resolve_at('1000086401', increments) == increments[1]
    assert resolve_at('1D', increments, now=now) == increments[1]
    stamp = rdiff.iso(increments[1])
    assert resolve_at(stamp, increments) == increments[1]
    assert resolve_at(stamp.replace('Z', '+00:00'), increments) == increments[1]
    assert calendar.timegm((2001, 9, 9, 1, 46, 40)) == increments[0]
    with pytest.raises(RdiffError, match='only 3 backups'):
        resolve_at('3B', increments)
    with pytest.raises(RdiffError, match='no backup that old'):
        resolve_at('999999999', increments)
    with pytest.raises(RdiffError, match='use now'):
        resolve_at('yesterday', increments)
    with pytest.raises(RdiffError, match='no backup'):
        resolve_at('now', [])


def test_version_check():
    def runner(version):
        return lambda argv, env=None, data=None, cwd=None: (0, 'rdiff-backup %s\n' % version, '')
    assert Rdiff(runner('2.2.2')).version() == (2, 2, 2)
    with pytest.raises(RdiffError, match='too old'):
        Rdiff(runner('2.0.5')).version()
    with pytest.raises(RdiffError, match='cannot run'):
        Rdiff(lambda argv, env=None, data=None, cwd=None: (127, '', 'not found')).version()
