# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The missing-file report (omero.backup.missing_files) on the session sandbox and on a copy of its data dir with
one file of each kind removed, through the real ansible CLI and a real PostgreSQL."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import stat

from omero_sandbox.idpath import id_to_relpath
from helpers.ansible import run_module
from helpers.sandbox import connection_args, query


def _args(description, datadir, **extra):
    args = connection_args(description)
    args.update(datadir=datadir)
    args.update(extra)
    return args


def test_complete_data_dir_has_no_missing_file(sandbox):
    result = run_module('missing_files', _args(sandbox, sandbox['datadir']))
    assert not result['failed'], result.get('msg')
    assert result['ok'] and result['missing_total'] == 0 and not result['changed']
    rows = sandbox['counts']['db_rows']
    counts = result['counts']
    assert counts['Thumbnails']['rows'] == rows['thumbnail']
    assert counts['Pixels']['rows'] + counts['ManagedRepository']['rows'] == rows['pixels'] + sandbox['counts']['managed_files'] + \
        sandbox['counts']['import_logs']
    print('missing_files on the session sandbox: %.3f s (walk %.3f s)' % (result['duration'], result['walk_duration']))


def test_each_kind_of_missing_file_is_reported(sandbox, tmp_path):
    copy = str(tmp_path / 'OMERO')
    shutil.copytree(sandbox['datadir'], copy, symlinks=True)
    files_id = query(sandbox, "SELECT min(id) FROM originalfile WHERE repo IS NULL AND mimetype IS DISTINCT FROM 'Repository'")[0][0]
    pixels_id = query(sandbox, 'SELECT max(id) FROM pixels WHERE repo IS NULL')[0][0]
    thumbnail_id = query(sandbox, 'SELECT max(id) FROM thumbnail')[0][0]
    managed_id, path, name = query(sandbox, "SELECT id, path, name FROM originalfile WHERE repo IS NOT NULL "
                                            "AND mimetype NOT IN ('Directory', 'Repository') ORDER BY id DESC LIMIT 1")[0]
    removed = {'Files': 'Files/' + id_to_relpath(files_id), 'Pixels': 'Pixels/' + id_to_relpath(pixels_id),
               'Thumbnails': 'Thumbnails/' + id_to_relpath(thumbnail_id), 'ManagedRepository': 'ManagedRepository/' + path + name}
    for relpath in removed.values():
        os.unlink(os.path.join(copy, relpath))
    # Pixels with a finished pyramid but no plain file are not missing; a pyramid's lock or temporary file is no file.
    os.unlink(os.path.join(copy, 'Pixels', '1'))
    os.unlink(os.path.join(copy, 'Pixels', '458'))
    report = str(tmp_path / 'missing.json')

    result = run_module('missing_files', _args(sandbox, copy, report_file=report))
    assert result['failed'] and result['msg'].startswith('missing files: ')
    assert result['missing_total'] == 5
    assert dict((kind, counts['missing']) for kind, counts in result['counts'].items()) == {
        'Files': 1, 'Pixels': 2, 'Thumbnails': 1, 'ManagedRepository': 1}
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o600
    with open(report) as handle:
        listed = json.load(handle)['missing']
    assert sorted((entry['kind'], entry['path']) for entry in listed) == sorted(
        list(removed.items()) + [('Pixels', 'Pixels/458')])
    assert dict((entry['kind'], entry['id']) for entry in listed if entry['path'] in removed.values()) == {
        'Files': files_id, 'Pixels': pixels_id, 'Thumbnails': thumbnail_id, 'ManagedRepository': managed_id}

    again = run_module('missing_files', _args(sandbox, copy, report_file=report, fail_on_missing=False))
    assert not again['failed'] and not again['ok'] and not again['changed']  # the same report is not rewritten
