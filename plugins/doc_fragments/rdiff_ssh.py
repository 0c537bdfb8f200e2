# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):
    # The options both data dir modules share: the engine (datadir/common.py engine_argument_spec()) and how they
    # reach a repository on a backup host (ssh_argument_spec()).
    DOCUMENTATION = r'''
options:
  engine:
    description:
      - The tool that keeps the repository. V(rdiff-backup) is the only one today.
      - This is the seam where another engine plugs in (restic, issue 14); the roles will only pass the name on
        (C(omero_backup_datadir_engine)), nothing else in them depends on the engine.
    type: str
    choices: [rdiff-backup]
    default: rdiff-backup
  ssh_user:
    description:
      - User on the backup host for a remote repository (C(ssh -l)).
    type: str
  ssh_key:
    description:
      - Private key file for a remote repository (C(ssh -i)).
    type: path
  ssh_port:
    description:
      - ssh port of the backup host.
    type: int
  ssh_options:
    description:
      - Extra C(ssh -o) options, e.g. V(UserKnownHostsFile=/etc/omero-backup/known_hosts).
      - ssh always runs with C(BatchMode=yes), so a missing key fails instead of waiting for a password, and with
        C(ConnectTimeout=30) unless these options set another C(ConnectTimeout).
    type: list
    elements: str
    default: []
  rdiff_backup:
    description:
      - The rdiff-backup command on the managed host.
    type: str
    default: rdiff-backup
  remote_rdiff_backup:
    description:
      - The rdiff-backup command on the backup host, e.g. V(sudo rdiff-backup).
    type: str
    default: rdiff-backup
'''
