# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base import atomic


def _leftovers(directory):
    return [name for name in os.listdir(str(directory)) if name.startswith(atomic.TEMP_PREFIX)]


def test_atomic_write_creates_file_with_private_mode(tmp_path):
    target = tmp_path / 'omero.config'
    atomic.atomic_write(str(target), 'omero.db.pass=secret\n')
    assert target.read_text() == 'omero.db.pass=secret\n'
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o600
    assert _leftovers(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / 'dump'
    target.write_bytes(b'old complete content')
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(str(target)) as handle:
            handle.write(b'half of the new')
            raise RuntimeError('disk full')
    assert target.read_bytes() == b'old complete content'
    assert _leftovers(tmp_path) == []


def test_mode_is_set_before_the_file_becomes_visible(tmp_path):
    target = tmp_path / 'manifest.json'
    with atomic.atomic_open(str(target), mode=0o640) as handle:
        temp_name = handle.name
        assert stat.S_IMODE(os.stat(temp_name).st_mode) == 0o640
        assert not target.exists()
        handle.write(b'{}')
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o640


def test_publish_moves_a_directory_into_place(tmp_path):
    staging = tmp_path / 'staging'
    staging.mkdir()
    (staging / 'toc.dat').write_bytes(b'x')
    final = tmp_path / 'final'
    atomic.publish(str(staging), str(final))
    assert (final / 'toc.dat').read_bytes() == b'x'
    assert not staging.exists()


def test_ensure_private_dir_reports_creation(tmp_path):
    target = tmp_path / 'a' / 'b'
    assert atomic.ensure_private_dir(str(target)) is True
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o700
    assert atomic.ensure_private_dir(str(target)) is False
