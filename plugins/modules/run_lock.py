#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: run_lock
short_description: The run lock of a backup or restore run, with an owner and a lease
version_added: 0.2.0
description:
  - Keeps one record per lock O(name) on the host, in the lock directory (C(/run/omero-backup) for root, made mode
    0700 when missing; the same checks as every other lock of the collection). The record names its holder (the run id,
    the controller host and the pid of its C(ansible-playbook), the host, when it started) and a lease.
  - O(state=present) takes the lock. A lock held by another run that may still be going is refused with a message that
    names that run. A lock whose holder is provably gone is taken over with a warning naming it; the holder is gone
    when its lease expired (unless its C(ansible-playbook) still runs on this host), or when it ran on this host and
    its process is gone (no such pid, the pid reused, or a reboot since).
  - O(state=renewed) extends the lease of a lock this run holds; it fails when the lock is no longer this run's (it
    was taken over), so a run never goes on beside another.
  - O(state=absent) removes the lock only when this run (O(run_id)) holds it; another run's lock is left in place.
  - The record is written by temporary file, fsync and rename, mode 0600; every read-check-write happens under an
    flock of the lock directory, so two runs that start at once cannot both take the lock.
author:
  - omero.backup contributors (@ome)
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.durations
attributes:
  check_mode:
    support: full
    details:
      - Says whether the lock would be taken, taken over or refused; writes nothing and makes no directory.
  diff_mode:
    support: none
options:
  name:
    description:
      - The lock's name; runs that must not overlap use the same name (the backup and the restore of one OMERO.server
        host both use C(omero-server)).
      - Lower-case letters, digits, C(-) and C(_).
    type: str
    default: omero-server
  state:
    description:
      - V(present) takes the lock, V(renewed) extends this run's lease, V(absent) releases this run's lock.
    type: str
    choices: [present, renewed, absent]
    default: present
  run_id:
    description:
      - This run's id; the same for every call of one run.
    type: str
    required: true
  job:
    description:
      - What the run is (for example C(backup), C(restore)), recorded for the messages of other runs.
    type: str
  step:
    description:
      - The step the run is at, recorded with the lease.
    type: str
  lease:
    description:
      - How long the lock stays live without a renewal; it must outlast the longest step of a run.
      - A duration (V(12h), V(90m); see the notes on durations).
    type: str
    default: 12h
  controller_host:
    description:
      - The host name of the controller that runs the playbook (C(uname -n) there). When it is this host, the holder's
        pid is checked too.
    type: str
  controller_pid:
    description:
      - The pid of the controller's C(ansible-playbook), when known.
    type: int
  lock_dir:
    description:
      - The lock directory. Unset, C(/run/omero-backup) for root and C(~/.omero-backup-locks) for any other user.
      - Made mode 0700 when missing (its parent must exist); refused when it is a symlink, owned by another user, or
        writable by group or others.
    type: path
notes:
  - The lock serialises whole runs. Each module also locks what it writes (flock on the dump directory, the repository,
    the data dir), so a run that somehow went on beside another would still not interleave their writes.
'''

EXAMPLES = r'''
- name: Take the run lock
  omero.backup.run_lock:
    run_id: "{{ run_id }}"
    job: backup
    controller_host: "{{ lookup('pipe', 'uname -n') }}"
    lease: 12h

- name: Renew it at each step
  omero.backup.run_lock:
    run_id: "{{ run_id }}"
    state: renewed
    step: database

- name: Release it
  omero.backup.run_lock:
    run_id: "{{ run_id }}"
    state: absent
'''

RETURN = r'''
path:
  description: The lock's record file.
  returned: always
  type: str
name:
  description: The lock's name.
  returned: always
  type: str
state:
  description: V(taken) (this call took it), V(held) (this run holds it), V(absent) (no lock is held).
  returned: always
  type: str
holder:
  description: The record now in place (V(null) when none); with O(state=absent) and another holder, that holder's.
  returned: always
  type: dict
taken_over:
  description: The record of a gone holder this call replaced, else V(null).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError, OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.run_lock import RunLock, RunLockHeld, run_lock_step


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', default='omero-server'),
            state=dict(type='str', choices=['present', 'renewed', 'absent'], default='present'),
            run_id=dict(type='str', required=True),
            job=dict(type='str'),
            step=dict(type='str'),
            lease=dict(type='str', default='12h'),
            controller_host=dict(type='str'),
            controller_pid=dict(type='int'),
            lock_dir=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    check_params(module)
    run_step(module, _run_lock, module.params, module.check_mode, errors=(OSError,))


def _run_lock(params, check_mode):
    lease = parse_duration(params['lease'], 'lease')
    if not lease:
        raise OmeroBackupError('lease must be longer than 0 seconds')
    lock = RunLock(params['name'], params['lock_dir'], check_mode=check_mode)
    try:
        return run_lock_step(lock, params, lease)
    except RunLockHeld as exc:
        raise OperationFailed(str(exc), {'holder': exc.holder, 'path': lock.path})


if __name__ == '__main__':
    main()
