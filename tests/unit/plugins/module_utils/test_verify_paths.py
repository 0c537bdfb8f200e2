# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils import verify

MANAGED = '8a1f2b7c-0000-4000-8000-000000000001'


def test_files_rows_map_to_the_id_path():
    assert verify.originalfile_relpath((1234567, '/', 'a.txt', None), MANAGED) == 'Files/Dir-001/Dir-234/1234567'
    assert verify.originalfile_relpath((999500, '/', 'a.txt', None), MANAGED) == 'Files/Dir-999/999500'


def test_managed_rows_map_to_path_and_name():
    row = (5, 'user-1_2/2026-01/05/12-00-00.000/', 'img.tif', MANAGED)
    assert verify.originalfile_relpath(row, MANAGED) == 'ManagedRepository/user-1_2/2026-01/05/12-00-00.000/img.tif'


def test_rows_of_other_repositories_are_not_checked():
    assert verify.originalfile_relpath((5, 'x/', 'y.py', 'another-repo'), MANAGED) is None


def test_pixels_without_repo_live_in_pixels_dir():
    assert verify.pixels_relpath((1000, None, None, None), MANAGED) == 'Pixels/Dir-001/1000'
    assert verify.pixels_relpath((7, 'u/d/', 'f.tif', MANAGED), MANAGED) == 'ManagedRepository/u/d/f.tif'


def test_check_files_separates_missing_and_dangling_links(tmp_path):
    (tmp_path / 'Files').mkdir()
    (tmp_path / 'Files' / '1').write_text('x')
    os.symlink('/nonexistent/source.tif', str(tmp_path / 'Files' / '2'))
    checked, missing, dangling = verify.check_files(str(tmp_path), ['Files/1', 'Files/2', 'Files/3', None])
    assert (checked, missing, dangling) == (3, ['Files/3'], ['Files/2'])
