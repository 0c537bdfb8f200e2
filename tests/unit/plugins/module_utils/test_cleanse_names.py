# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The escape cleanse uses for file names in results (names.escape): JSON-safe, readable, reversible (issue 12, item 7)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base.names import escape as escape_name, unescape as unescape_name


@pytest.mark.parametrize('raw, shown', [
    (b'Pixels/Dir-001/1234', 'Pixels/Dir-001/1234'),
    (b'a\xffb', 'a\\xffb'),
    (b'new\nline', 'new\\nline'),
    (b'tab\tand\rreturn', 'tab\\tand\\rreturn'),
    (b' blank ', ' blank '),
    (u'na\u00efve \u00e9t\u00e9'.encode('utf-8'), u'na\u00efve \u00e9t\u00e9'),
    (b'back\\slash', 'back\\\\slash'),
    (b'lit\\xff', 'lit\\\\xff'),  # a name that looks like an escape stays apart from one
    (b'\x7f\x01', '\\x7f\\x01'),
    (u'zero\u200bwidth'.encode('utf-8'), 'zero\\xe2\\x80\\x8bwidth'),
])
def test_escape_is_readable_json_safe_and_reversible(raw, shown):
    assert escape_name(raw) == shown
    assert escape_name(os.fsdecode(raw)) == shown  # os.listdir's str (surrogateescape) gives the same
    assert unescape_name(shown) == raw
    json.dumps(shown).encode('utf-8')  # no lone surrogate left: every JSON encoder and callback takes it


def test_every_byte_round_trips():
    raw = bytes(range(1, 256))
    assert unescape_name(escape_name(raw)) == raw
