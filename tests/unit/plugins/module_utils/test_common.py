# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.space import free_bytes


@pytest.mark.parametrize('text, seconds', [
    ('20h', 72000), ('8W', 8 * 7 * 86400), ('1d12h', 129600), ('90m', 5400), ('45', 45), (30, 30), ('2D', 172800),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize('text', ['', 'soon', '20x', '5h later'])
def test_parse_duration_rejects_garbage_with_a_clear_message(text):
    with pytest.raises(OmeroBackupError) as error:
        parse_duration(text)
    assert 'duration' in str(error.value)


def test_free_bytes_of_a_destination_not_made_yet_measures_its_parent(tmp_path):
    assert free_bytes(str(tmp_path / 'not' / 'yet')) == free_bytes(str(tmp_path))


class _ModuleStub(object):
    def __init__(self, diff_mode):
        self._diff = diff_mode
        self.exited_with = None

    def exit_json(self, **result):
        self.exited_with = result


@pytest.mark.parametrize('diff_mode', [True, False])
def test_finish_keeps_the_diff_only_in_diff_mode(diff_mode):
    from ansible_collections.omero.backup.plugins.module_utils.glue import finish
    module = _ModuleStub(diff_mode)
    finish(module, {'changed': True, 'diff': {'before': 'a', 'after': 'b'}})
    assert ('diff' in module.exited_with) is diff_mode
    assert module.exited_with['changed'] is True
