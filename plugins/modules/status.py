#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: status
short_description: Record the outcome of a backup run for people and for Prometheus
version_added: 0.1.0
description:
  - Keeps a JSON status file with the last run, the last success and the last failure of each O(job), and,
    when O(metrics_file) is set, a node_exporter textfile-collector file with the same facts as gauges
    (C(omero_backup_last_success_timestamp_seconds), C(omero_backup_last_failure_timestamp_seconds),
    C(omero_backup_last_run_success), C(omero_backup_last_success_duration_seconds),
    C(omero_backup_component_bytes), C(omero_backup_component_duration_seconds),
    C(omero_backup_component_success)).
  - Both files are replaced atomically, so a monitoring scrape never reads a torn file.
  - A success of the backup set already recorded as the last success (same O(set_id)) changes nothing, so a re-run
    that found every backup recent enough reports no change. A failure is always recorded.
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_none
options:
  status_file:
    description:
      - The JSON status file. Its directory is created (mode 0755) when missing, provided the directory above it
        exists.
    type: path
    default: /var/lib/omero-backup/status.json
  metrics_file:
    description:
      - A C(.prom) file in node_exporter's C(--collector.textfile.directory). Its directory must exist.
      - Unset, no metrics are written.
    type: path
  job:
    description:
      - Which kind of run this is; each job has its own record and its own C(job) label.
    type: str
    default: backup
  state:
    description:
      - The outcome of the run.
    type: str
    choices: [succeeded, failed]
    required: true
  started:
    description:
      - When the run started, in seconds since the epoch (for example C(ansible_date_time.epoch) taken at the start).
    type: float
  set_id:
    description:
      - The backup set this run produced or confirmed.
    type: str
  components:
    description:
      - Per component (for example C(config), C(database), C(datadir)), a dict with C(ok) (bool), C(bytes) (int),
        C(duration) (seconds) and C(skipped) (bool, the component was recent enough and not redone).
    type: dict
    default: {}
  error:
    description:
      - Why the run failed.
    type: str
  details:
    description:
      - Anything else worth keeping with the run (paths, versions). Must not hold secrets.
      - A C(pgbackrest) key holding the RV(omero.backup.db_archive#module:health) of M(omero.backup.db_archive)
        (O(omero.backup.db_archive#module:state=health)) adds its gauges to the metrics -
        C(omero_backup_pgbackrest_last_backup_timestamp_seconds) and C(omero_backup_pgbackrest_last_backup_age_seconds)
        by C(type) (full, diff, incr), C(omero_backup_wal_archive_age_seconds) by C(source) (pgbackrest, postgresql),
        C(omero_backup_pgbackrest_archive_failures), C(omero_backup_pgbackrest_archive_failing),
        C(omero_backup_pgbackrest_repo_bytes), C(omero_backup_pgbackrest_check_success) and
        C(omero_backup_pgbackrest_health_timestamp_seconds).
    type: dict
    default: {}
  mode:
    description:
      - File mode of both files, in octal. They hold no secret; monitoring agents read them.
    type: str
    default: '0644'
  owner:
    description:
      - Owner of both files.
    type: str
  group:
    description:
      - Group of both files.
    type: str
notes:
  - The status file is bookkeeping, so a corrupt one is replaced rather than failing the run.
'''

EXAMPLES = r'''
- name: Record a successful backup set
  omero.backup.status:
    status_file: /var/lib/omero-backup/status.json
    metrics_file: /var/lib/prometheus/node-exporter/omero_backup.prom
    state: succeeded
    started: "{{ omero_backup_started }}"
    set_id: "2026-11-26T083000Z"
    components:
      config: {ok: true, bytes: 4096, duration: 2.1}
      database: {ok: true, bytes: 1073741824, duration: 311.0}
      datadir: {ok: true, bytes: 5497558138880, duration: 1800.5}

- name: Record a failure
  omero.backup.status:
    state: failed
    error: "database dump failed: disk full"
'''

RETURN = r'''
status:
  description: The whole status as written to O(status_file).
  returned: always
  type: dict
status_file:
  description: The status file.
  returned: always
  type: str
metrics_file:
  description: The metrics file, V(null) when none.
  returned: always
  type: str
status_dir_created:
  description: The status file's directory was missing and was (in check mode, would be) created.
  returned: always
  type: bool
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.status import record
from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params


def main():
    module = AnsibleModule(
        argument_spec=dict(
            status_file=dict(type='path', default='/var/lib/omero-backup/status.json'),
            metrics_file=dict(type='path'),
            job=dict(type='str', default='backup'),
            state=dict(type='str', choices=['succeeded', 'failed'], required=True),
            started=dict(type='float'),
            set_id=dict(type='str'),
            components=dict(type='dict', default={}),
            error=dict(type='str'),
            details=dict(type='dict', default={}),
            mode=dict(type='str', default='0644'),
            owner=dict(type='str'),
            group=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    check_params(module)
    run_step(module, record, module.params, time.time(), check_mode=module.check_mode)


if __name__ == '__main__':
    main()
