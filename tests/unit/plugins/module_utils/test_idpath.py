# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import entry_id, entry_ids, id_to_dirs, id_to_relpath


@pytest.mark.parametrize('object_id, relpath', [
    (1, '1'),
    (999, '999'),
    (1000, 'Dir-001/1000'),
    (1999, 'Dir-001/1999'),
    (123456, 'Dir-123/123456'),
    (999000, 'Dir-999/999000'),
    # omero-py's float division sends this band to Dir-999/.. with rounding errors one level up.
    (999001, 'Dir-999/999001'),
    (999999, 'Dir-999/999999'),
    (1000000, 'Dir-001/Dir-000/1000000'),
    (1234567, 'Dir-001/Dir-234/1234567'),
    (999999999, 'Dir-999/Dir-999/999999999'),
    (1000000000, 'Dir-001/Dir-000/Dir-000/1000000000'),
])
def test_id_to_relpath_matches_the_server_rule(object_id, relpath):
    assert id_to_relpath(object_id) == relpath


def test_every_id_in_the_float_error_band_stays_in_its_own_directory():
    for object_id in range(999001, 1000000):
        assert id_to_dirs(object_id) == ['Dir-999']


def test_negative_id_is_rejected():
    with pytest.raises(ValueError):
        id_to_relpath(-1)


@pytest.mark.parametrize('name, expected', [
    ('12', 12),
    ('12_pyramid', 12),
    ('.12_pyramid.pyr_lock', 12),
    ('.12_pyramid8573028.tmp', 12),
    ('.12_pyramid.tmp', 12),
    ('1000000', 1000000),
    ('README', None),
    ('12.txt', None),
    ('12_pyramid.pyr_lock', None),
    ('Dir-001', None),
    ('.12_pyramid', None),
    ('', None),
])
def test_entry_id_follows_cleanse_name_rule(name, expected):
    assert entry_id(name) == expected


@pytest.mark.parametrize('name', ['123\n', '.5_pyramidX.tmp\n', '7_pyramid\n'])
def test_trailing_newline_is_not_an_id(name):
    assert entry_id(name) is None


@pytest.mark.parametrize('name', [
    '\u0661\u0662\u0663',          # Arabic-Indic digits: str.isdecimal() and \d take them, OMERO never writes them
    '\uff11\uff12',                # fullwidth digits
    '0997', '0', '00', '0_pyramid', '.0997_pyramid.pyr_lock',
    '99999999999999999999',        # above PostgreSQL bigint: no id column can hold it
    '12 ', ' 12', '+5', '1_000', '12\n', '12\udce9',
])
def test_names_that_are_not_ids_are_kept(name):
    assert entry_id(name) is None
    assert entry_ids([name]) == [None]
    assert entry_ids(['5', name, '7']) == [5, None, 7]


def test_entry_ids_fast_path_agrees_with_entry_id():
    plain = [str(n) for n in range(1, 5000, 7)] + ['999999999999999999', '9223372036854775807']
    assert entry_ids(plain) == [int(n) for n in plain]
    assert entry_ids(['9223372036854775808']) == [None]
    assert entry_ids([]) == []
    mixed = plain + ['0997', '12_pyramid', '\u0661']
    assert entry_ids(mixed) == [entry_id(name) for name in mixed]
