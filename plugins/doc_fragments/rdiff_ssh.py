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
      - The tool that keeps the repository. V(rdiff-backup) (the default) keeps one browsable mirror plus reverse
        increments; V(restic) keeps deduplicated, encrypted snapshots in a local, C(sftp:), C(rest:) or C(s3:)
        repository (see the restic engine section of docs/datadir.md).
      - The roles only pass the name on (C(omero_backup_datadir_engine)).
    type: str
    choices: [rdiff-backup, restic]
    default: rdiff-backup
  ssh_user:
    description:
      - User on the backup host for a remote repository (C(ssh -l)); for restic's C(sftp:) repositories too (a
        C(user@) in O(engine=restic)'s C(sftp:user@host:/path) is used when this is not set).
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
  restic:
    description:
      - The restic command on the managed host (O(engine=restic)); restic 0.14 or newer.
    type: str
    default: restic
  password_file:
    description:
      - O(engine=restic) only. File holding the restic repository password, a regular file of mode 0600 or 0400
        (one readable by group or others is refused before restic runs). restic reads it itself
        (C(RESTIC_PASSWORD_FILE)); the password never appears on a command line.
      - Give this or O(password).
    type: path
  password:
    description:
      - O(engine=restic) only. The restic repository password, handed to restic in its environment
        (C(RESTIC_PASSWORD)), never on a command line. Prefer O(password_file).
    type: str
  s3_access_key_id:
    description:
      - O(engine=restic) with an C(s3:) repository. The S3 access key id, handed to restic in its environment
        (C(AWS_ACCESS_KEY_ID)). Goes with O(s3_secret_access_key).
    type: str
  s3_secret_access_key:
    description:
      - O(engine=restic) with an C(s3:) repository. The S3 secret key (C(AWS_SECRET_ACCESS_KEY) in restic's
        environment).
    type: str
  s3_credentials_file:
    description:
      - O(engine=restic) with an C(s3:) repository, instead of the two keys. An AWS shared credentials file
        (C([default]) with C(aws_access_key_id) and C(aws_secret_access_key)) of mode 0600 or 0400, passed as
        C(AWS_SHARED_CREDENTIALS_FILE).
    type: path
  restic_host:
    description:
      - O(engine=restic) only. The host name snapshots are made under (default the managed host's name) and, for
        a restore, the only host whose snapshots are considered (default any host, so a replacement machine finds
        the old one's snapshots).
    type: str
  lock_lease:
    description:
      - O(engine=restic) only. A restic repository lock older than this duration whose holder is provably gone
        (a process of this host that no longer runs) is removed with C(restic unlock) and the command retried
        once. A lock of another host is never removed; the run fails and names its holder, host, pid and age.
    type: str
    default: 30m
'''
