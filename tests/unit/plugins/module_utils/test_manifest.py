# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

from ansible_collections.omero.backup.plugins.module_utils.base import manifest


def test_complete_is_the_last_key_written(tmp_path):
    path = str(tmp_path / 'x.manifest.json')
    manifest.write_manifest(path, {'complete': True, 'db': 'omero'}, complete=True)
    text = open(path).read()
    assert list(json.loads(text).keys())[-1] == 'complete'
    assert manifest.is_complete(path)


def test_incomplete_and_garbage_manifests_are_not_complete(tmp_path):
    path = str(tmp_path / 'x.manifest.json')
    manifest.write_manifest(path, {}, complete=False)
    assert not manifest.is_complete(path)
    (tmp_path / 'y.manifest.json').write_text('{"complete": tr')
    assert not manifest.is_complete(str(tmp_path / 'y.manifest.json'))
    assert not manifest.is_complete(str(tmp_path / 'absent.manifest.json'))


def test_verify_manifest_files_catches_flip_and_truncation(tmp_path):
    (tmp_path / 'a').write_bytes(b'abcdef')
    (tmp_path / 'b').write_bytes(b'123456')
    entries = manifest.file_entries(str(tmp_path), ['a', 'b'])
    assert manifest.verify_manifest_files(str(tmp_path), entries) == []
    (tmp_path / 'a').write_bytes(b'abcdeX')
    (tmp_path / 'b').write_bytes(b'123')
    problems = manifest.verify_manifest_files(str(tmp_path), entries)
    assert any(p.startswith('a: sha256') for p in problems)
    assert any(p.startswith('b: size') for p in problems)
