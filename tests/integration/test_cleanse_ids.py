# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The id rule (module_utils/base/names.py) on the real cleanse module: an id is ASCII digits without a leading zero
that PostgreSQL's bigint can hold, and a Dir-NNN directory exactly three ASCII digits; any other name is kept."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from helpers.ansible import run_module
from test_cleanse import _age_datadir, _datadir_state, _db_args

# Names an id-only rule using \d, int() or $ took for ids (or for Dir-NNN): none is OMERO's, all must stay.
NOT_IDS = ['0999991', '0', '00', '\u0669\u0669\u0669\u0669\u0669\u0662',  # Arabic-Indic 999992
           '\uff19\uff19\uff19\uff19\uff19\uff13',  # fullwidth 999993
           '999994\n', '0999995_pyramid', '.0999996_pyramid.pyr_lock']
NOT_ID_DIRS = ['Dir-\u0661\u0662\u0663', 'Dir-0123', 'Dir-12\n']


def test_cleanse_keeps_names_that_are_not_ids(sandbox_factory):
    description = sandbox_factory(objects=30, orphans=6, seed=5)
    datadir = description['datadir']
    for root in ('Pixels', 'Files', 'Thumbnails'):
        for name in NOT_IDS:
            with open(os.path.join(datadir, root, name), 'wb') as handle:
                handle.write(b'not an OMERO id: %r\n' % name.encode('utf-8'))
        for name in NOT_ID_DIRS:
            os.makedirs(os.path.join(datadir, root, name))
            # 999997 has no row: inside a real Dir-999 it would be an orphan, here it is not the server's.
            with open(os.path.join(datadir, root, name, '999997'), 'wb') as handle:
                handle.write(b'kept with its directory\n')
    _age_datadir(description)
    before = _datadir_state(datadir)

    result = run_module('cleanse', _db_args(description, min_age='0'))
    assert not result['failed'], (result.get('msg'), result.get('refused'))
    assert result['removed'] == len(description['orphans'])
    expected = dict(before)
    for relpath in description['orphans']:
        del expected[relpath]
    assert _datadir_state(datadir) == expected
    for root in ('Pixels', 'Files', 'Thumbnails'):
        for name in NOT_IDS + [os.path.join(d, '999997') for d in NOT_ID_DIRS]:
            assert os.path.join(root, name) in expected
