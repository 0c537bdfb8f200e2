# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one file-name rule module: ids, Dir-NNN, rolled logs, and how odd names are shown in results."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import json
import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base import names

ODD = [b'caf\xe9', b'new\nline', b' lead', b'trail ', 'caf\u00e9'.encode('utf-8'), '\u65e5\u672c'.encode('utf-8'),
       b'back\\slash', b'tab\there', b'\xed\xa0\x80', b'nbsp\xc2\xa0', b'\\xe9', b'\\u00e9', b'cr\r']


@pytest.mark.parametrize('raw', ODD)
def test_escape_round_trips_and_is_json_safe(raw):
    as_str = raw.decode('utf-8', 'surrogateescape')
    shown = names.escape(as_str)
    assert names.escape(raw) == shown
    json.dumps(shown).encode('utf-8')          # no lone surrogate left
    assert shown.isprintable()                 # a newline or a tab is never shown raw
    assert names.unescape(shown) == raw
    assert base64.b64decode(names.b64(as_str)) == raw


def test_escape_is_one_to_one_over_odd_and_lookalike_names():
    shown = [names.escape(raw) for raw in ODD]
    assert len(set(shown)) == len(ODD)
    assert names.escape('plain name.log.1') == 'plain name.log.1'
    assert names.escape(b'caf\xe9') == 'caf\\xe9' and names.escape(b'\\xe9') == '\\\\xe9'


def test_escaped_list_records_exact_bytes_of_escaped_names_only():
    b64 = {}
    shown = names.escaped_list(['plain', 'caf\udce9', 'a\nb'], b64)
    assert shown == ['plain', 'caf\\xe9', 'a\\nb']
    assert b64 == {'caf\\xe9': base64.b64encode(b'caf\xe9').decode(), 'a\\nb': base64.b64encode(b'a\nb').decode()}


@pytest.mark.parametrize('name, expected', [
    ('Dir-000', True), ('Dir-123', True), ('Dir-999', True),
    ('Dir-12', False), ('Dir-1234', False), ('Dir-123\n', False), ('Dir-\u0661\u0662\u0663', False),
    ('dir-123', False), (' Dir-123', False), ('Dir-123 ', False), (b'Dir-123', False),
])
def test_dir_rule_is_exactly_three_ascii_digits(name, expected):
    assert names.is_id_directory(name) is expected


@pytest.mark.parametrize('name, log, generation, gz', [
    ('Blitz-0.log.1', 'Blitz-0.log', '1', False),
    ('Blitz-0.log.10', 'Blitz-0.log', '10', False),
    ('Blitz-0.log.3.gz', 'Blitz-0.log', '3', True),
    ('Blitz-0.log.20261120T101500Z.gz', 'Blitz-0.log', '20261120T101500Z', True),
    ('Blitz-0.log.20261120T101500Z-2', 'Blitz-0.log', '20261120T101500Z-2', False),
    ('caf\udce9 \u65e5.log.2', 'caf\udce9 \u65e5.log', '2', False),
])
def test_rolled_log_names(name, log, generation, gz):
    match = names.rolled_log(name)
    assert match and (match.group('log'), match.group('generation'), bool(match.group('gz'))) == (log, generation, gz)


@pytest.mark.parametrize('name', [
    'Blitz-0.log.7\n', 'Blitz-0.log.\u0667', 'Blitz-0.log.\uff17', 'Blitz-0.log', 'Blitz-0.log.1.gz\n',
    'new\nline.log.1', 'Blitz-0.log.1.xz', 'Blitz-0.log.x', '.log.1x', 'Blitz-0.log.1\x00',
])
def test_not_rolled_logs(name):
    assert names.rolled_log(name) is None


def test_live_log_rule():
    assert names.is_live_log('Blitz-0.log') and names.is_live_log('caf\udce9.log')
    assert not names.is_live_log('Blitz-0.log\n') and not names.is_live_log('master.out')


def test_escape_of_what_os_listdir_gives(tmp_path):
    for raw in ODD:
        with open(os.path.join(os.fsencode(str(tmp_path)), raw), 'wb'):
            pass
    listed = sorted(os.listdir(str(tmp_path)))
    assert sorted(names.unescape(names.escape(name)) for name in listed) == sorted(ODD)
