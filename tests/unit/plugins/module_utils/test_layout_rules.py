# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layout's rules without a sandbox: config.xml's active profile, source names, the path map, the match of a
set's sources against a host, and the set record's sources list."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils import backup_set
from ansible_collections.omero.backup.plugins.module_utils.layout.discover import LayoutError, discover, read_config, slug
from ansible_collections.omero.backup.plugins.module_utils.layout.info import LayoutFailed, layout_info
from ansible_collections.omero.backup.plugins.module_utils.layout.match import check_path_map, mapped

from ansible_collections.omero.backup.tests.unit.plugins.module_utils.test_backup_set import present_options

CONFIG = ('<icegrid><properties id="__ACTIVE__"><property name="omero.config.profile" value="other" />'
          '<property name="omero.data.dir" value="/wrong" /></properties>'
          '<properties id="default"><property name="omero.data.dir" value="/OMERO" /></properties>'
          '<properties id="other"><property name="omero.data.dir" value="%s" />'
          '<property name="omero.managed.dir" value="%s" /></properties></icegrid>')


def test_config_is_read_from_the_active_profile(tmp_path):
    grid = tmp_path / 'etc' / 'grid'
    grid.mkdir(parents=True)
    (grid / 'config.xml').write_text(CONFIG % ('/data', '/managed'))
    assert read_config(str(tmp_path)) == {'omero.data.dir': '/data', 'omero.managed.dir': '/managed'}
    assert read_config(str(tmp_path), 'default') == {'omero.data.dir': '/OMERO'}
    assert read_config(str(tmp_path / 'missing')) == {}


def test_source_names_are_set_id_safe():
    assert slug('ManagedRepository/volume-B') == 'ManagedRepository_volume-B'
    assert slug('/mnt/b with space/é') == 'mnt_b_with_space'
    assert slug('/') == 'root'


def test_path_map_longest_prefix_wins():
    pairs = check_path_map({'/mnt': '/srv', '/mnt/b': '/fast/b'})
    assert mapped('/mnt/b/x', pairs) == ('/fast/b/x', '/mnt/b')
    assert mapped('/mnt/bb', pairs) == ('/srv/bb', '/mnt')
    assert mapped('/other', pairs) == ('/other', None)
    with pytest.raises(LayoutError):
        check_path_map({'relative': '/srv'})


def _tree(tmp_path):
    datadir, managed, volume = tmp_path / 'OMERO', tmp_path / 'managed', tmp_path / 'vol'
    for path in (datadir / 'ManagedRepository', managed, volume):
        path.mkdir(parents=True)
    (volume / 'f').write_bytes(b'12345')
    os.symlink(str(volume), str(datadir / 'ManagedRepository' / 'vol'))
    os.symlink(str(tmp_path / 'elsewhere' / 'x'), str(datadir / 'dangling'))
    return datadir, managed, volume


def test_volume_and_managed_dir_found_a_dangling_link_only_warned(tmp_path):
    datadir, managed, volume = _tree(tmp_path)
    layout = discover({'datadir': str(datadir), 'managed_dir': str(managed)})
    assert [(s.kind, s.path) for s in layout.sources] == [('datadir', str(datadir)), ('managed', str(managed)),
                                                          ('volume', str(volume))]
    assert layout.sources[2].bytes == 5 and layout.sources[2].name == 'volume-ManagedRepository_vol'
    assert not layout.problems and not layout.link_problems and 'point at nothing' in layout.warnings[0]


def test_link_to_a_file_outside_every_source_fails_unless_excluded(tmp_path):
    datadir, _managed, _volume = _tree(tmp_path)
    (tmp_path / 'instrument').mkdir()
    (tmp_path / 'instrument' / 'raw.tif').write_bytes(b'x')
    os.symlink(str(tmp_path / 'instrument' / 'raw.tif'), str(datadir / 'ManagedRepository' / 'raw.tif'))
    with pytest.raises(LayoutFailed, match='point outside every source'):
        layout_info({'datadir': str(datadir)})
    assert layout_info({'datadir': str(datadir), 'exclude': [str(tmp_path / 'instrument')]})['links']['excluded'] == 1


def test_a_set_that_does_not_fit_is_refused_naming_each_source(tmp_path):
    datadir, managed, _volume = _tree(tmp_path)
    sources = [{'name': 'datadir', 'kind': 'datadir', 'path': '/OMERO'},
               {'name': 'managed', 'kind': 'managed', 'path': '/old/managed', 'store': 's:/x', 'increment_time': 't'},
               {'name': 'volume-x', 'kind': 'volume', 'path': '/nowhere/vol', 'store': 's:/y', 'increment_time': 't'}]
    with pytest.raises(LayoutFailed) as failed:
        layout_info({'datadir': str(datadir), 'managed_dir': str(managed), 'set_sources': sources})
    assert [item['name'] for item in failed.value.result['unmatched']] == ['managed', 'volume-x']
    fits = layout_info({'datadir': str(datadir), 'managed_dir': str(managed), 'set_sources': sources,
                        'path_map': {'/old/managed': str(managed), '/nowhere': str(tmp_path)}})
    assert [entry['dest'] for entry in fits['plan']] == [str(managed), str(tmp_path / 'vol')]


def test_the_set_record_lists_its_sources(tmp_path):
    sources = [{'name': 'datadir', 'kind': 'datadir', 'path': '/OMERO', 'bytes': 30},
               {'name': 'certs', 'kind': 'certs', 'path': '/etc/omero/certs', 'store': 'store:/srv/sources/certs',
                'increment_time': '2026-11-26T08:30:00Z', 'changed': True}]
    result = backup_set.present(present_options(tmp_path, sources=sources), False, 1795681900)
    record = result['record']
    assert list(record)[-2:] == ['sources', 'complete'] and record['complete'] is True
    assert record['sources'][1] == dict((k, v) for k, v in sources[1].items() if k != 'changed')
    without_store = [sources[0], dict(sources[1], store=None)]
    with pytest.raises(backup_set.BackupSetError, match='sources'):
        backup_set.present(present_options(tmp_path / 'b', sources=without_store), False, 1795681900)
