# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.other_sources through the real ansible CLI: the archive the backup role writes beside the config
(it replaced a bash script in roles/backup/tasks/config.yml, issue 13)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import stat
import tarfile

from helpers.ansible import run_module

ODD = b'caf\xe9 \nscript.py'  # not UTF-8, with a blank and a newline


def sources(tmp_path):
    root = tmp_path / 'server'
    (root / 'etc' / 'grid').mkdir(parents=True)
    (root / 'etc' / 'grid' / 'default.xml').write_text('<grid/>\n')
    scripts = root / 'lib' / 'scripts'
    scripts.mkdir(parents=True)
    (scripts / 'b.py').write_text('b\n')
    (scripts / 'a.py').write_text('a\n')
    with open(os.path.join(os.fsencode(str(scripts)), ODD), 'wb') as handle:
        handle.write(b'odd\n')
    return [str(root / 'etc' / 'grid' / 'default.xml'), str(scripts), str(root / 'etc' / 'certs')]


def test_archives_what_exists_reproducibly_and_atomically(tmp_path):
    paths = sources(tmp_path)
    dest = tmp_path / 'backup' / 'other-sources.tar.gz'
    dest.parent.mkdir()
    args = {'paths': paths, 'dest': str(dest)}

    preview = run_module('other_sources', args, check=True)
    assert not preview['failed'], preview.get('msg')
    assert preview['changed'] and not dest.exists()

    first = run_module('other_sources', args)
    assert not first['failed'], first.get('msg')
    assert first['changed'] and first['missing'] == [paths[2]]
    assert first['sources'] == [paths[0].lstrip('/'), paths[1].lstrip('/')]
    data = dest.read_bytes()
    assert first['sha256'] == hashlib.sha256(data).hexdigest() and first['size'] == len(data)
    assert first['sha256'] == preview['sha256']
    assert stat.S_IMODE(os.stat(str(dest)).st_mode) == 0o600
    with tarfile.open(str(dest)) as tar:
        names = [os.fsencode(member.name) for member in tar.getmembers()]
    scripts = os.fsencode(paths[1].lstrip('/'))
    # The odd name survives as its bytes; a directory's entries are sorted.
    assert names[0] == os.fsencode(paths[0].lstrip('/'))
    assert names[1:] == [scripts, scripts + b'/a.py', scripts + b'/b.py', scripts + b'/' + ODD]

    # Nothing changed: the same bytes, the file left alone.
    inode = os.stat(str(dest)).st_ino
    again = run_module('other_sources', args)
    assert not again['changed'] and again['sha256'] == first['sha256'] and os.stat(str(dest)).st_ino == inode

    # A changed source: check mode says so and writes nothing; a run replaces the archive.
    with open(paths[0], 'a') as handle:
        handle.write('<!-- edited -->\n')
    would = run_module('other_sources', args, check=True)
    assert would['changed'] and dest.read_bytes() == data
    changed = run_module('other_sources', args)
    assert changed['changed'] and changed['sha256'] == would['sha256'] != first['sha256']
    assert os.listdir(str(dest.parent)) == ['other-sources.tar.gz']


def test_refuses_a_relative_path_and_a_missing_directory(tmp_path):
    refused = run_module('other_sources', {'paths': ['etc/grid'], 'dest': str(tmp_path / 'a.tar.gz')})
    assert refused['failed'] and 'etc/grid' in refused['msg']
    missing = run_module('other_sources', {'paths': [str(tmp_path)], 'dest': str(tmp_path / 'no' / 'a.tar.gz')})
    assert missing['failed'] and 'does not exist' in missing['msg'], missing['msg']
    assert not (tmp_path / 'no').exists()
