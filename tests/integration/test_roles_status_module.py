# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.status through the real ansible CLI: written, idempotent per set, honest in check mode."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

from helpers.ansible import run_module


def test_status_and_metrics_through_ansible(tmp_path):
    args = dict(status_file=str(tmp_path / 'status.json'), metrics_file=str(tmp_path / 'omero_backup.prom'),
                state='succeeded', started=1000.5, set_id='2026-11-26T083000Z',
                components={'database': {'ok': True, 'bytes': 4096, 'duration': 2.5}})
    checked = run_module('status', args, check=True)
    assert checked['changed'] and not (tmp_path / 'status.json').exists()

    first = run_module('status', args)
    assert not first['failed'] and first['changed']
    assert json.loads((tmp_path / 'status.json').read_text())['jobs']['backup']['last_success']['set_id'] == args['set_id']
    assert 'omero_backup_component_bytes{job="backup",component="database"} 4096' in (tmp_path / 'omero_backup.prom').read_text()

    again = run_module('status', args)
    assert not again['changed']

    bad = run_module('status', dict(args, components={'database': {'ok': True, 'size': 1}}))
    assert bad['failed'] and 'unknown key' in bad['msg']
