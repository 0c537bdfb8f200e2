#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: datadir_restore
short_description: Restore the OMERO binary repository from an rdiff-backup or restic repository
version_added: 0.1.0
description:
  - Restores the newest backup, or the one named by O(at), of an rdiff-backup repository (local or C(host::/path) over
    ssh) into the OMERO data directory; step 3 of the OMERO restore procedure, after the config and the database.
  - Refuses to restore over a non-empty O(dest) unless O(state=replaced). The backup is always restored into a
    temporary directory first and only then swapped in, so a failed restore leaves the old data directory as it was.
    The old tree is kept next to O(dest) as C(<dest>.replaced-<time>) unless O(keep_replaced=false).
  - When O(dest) is a mount point, the temporary directory and the kept old tree are made inside it (a rename cannot
    cross filesystems) and swapped entry by entry.
  - Before anything changes, checks that the backup holds C(.omero/repository/<uuid>/repo_uuid) and, when O(db) is
    set and the database answers, that C(<uuid>) is the database's C(omero.db.uuid). A mismatch fails the task
    (OMERO would register a new repository and every imported fileset would become unreachable).
  - Ownership and permissions are restored as recorded (run as root); O(owner) and O(group) can force them.
  - File names are bytes and come back byte for byte (names that are not UTF-8, hold a newline or blanks). The
    check that nothing is missing compares C(rdiff-backup list files), which prints names lossily, with the restored
    tree put through the same decoding, line by line and counted. Names in results are shown escaped (C(\xe9)).
  - A restore killed mid-copy leaves its staging tree C(.omero-backup-restore.<key>.*) (C(<key>) names O(dest)). The
    next run, once it holds the data dir's lock (so no restore uses it), removes those of O(dest) and reports them in
    RV(leftovers); so does M(omero.backup.datadir_backup), which never backs them up.
  - With O(engine=restic), the chosen snapshot's data dir (its root; the set's dump and config it also holds are left
    out) is written into the staging directory with C(restic restore), and the completeness check compares
    C(restic ls --json) (which shows each byte of a name that is not UTF-8 as U+FFFD) with the restored tree put
    through the same decoding. Staging, swap-in, ownership, marker and uuid checks are the same as for rdiff-backup.
extends_documentation_fragment:
  - omero.backup.rdiff_ssh
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
  - omero.backup.durations
attributes:
  check_mode:
    details:
      - Resolves the backup to restore, runs the uuid checks and reports what would happen; nothing is written.
  diff_mode:
    details:
      - Shows which backup O(dest) held before and will hold after.
notes:
  - Idempotent. After a restore the module writes C(.omero/omero-backup-restored.json) into O(dest) with the
    repository, the backup time and a fingerprint of the restored tree (paths, types, modes, owners, file sizes and
    modification times). Restoring the same backup again is V(changed=false) as long as the tree still matches that
    fingerprint; once the tree has changed, O(state=present) refuses and O(state=replaced) restores again.
  - The marker file is small and harmless to OMERO; it is part of the next backup of the data directory.
  - While it restores, the module holds the data dir's lock in the collection's lock directory (C(/run/omero-backup),
    mode 0700, for root; C(~/.omero-backup-locks) for another user), the same lock M(omero.backup.cleanse) takes, so
    a cleanse never runs over a restore in progress, nor a restore over a cleanse.
requirements:
  - rdiff-backup 2.2 or newer on the managed host and, for a remote O(src), on the backup host.
  - For O(engine=restic), restic 0.14 or newer on the managed host.
  - psycopg2 on the managed host when O(db) is set.
options:
  src:
    description:
      - The rdiff-backup repository, a local absolute path or C([user@]host::/absolute/path) over ssh.
      - With O(engine=restic), the restic repository (a local absolute path, C(sftp:[user@]host:/path),
        C(rest:http(s\)://...) or C(s3:http(s\)://host:port/bucket[/prefix])).
    type: str
    required: true
  dest:
    description:
      - The OMERO data directory to restore into (C(omero_server_datadir)). Its parent must exist.
    type: path
    default: /OMERO
  at:
    description:
      - Which backup to restore; the newest one taken at or before this time.
      - V(now) (the newest), C(NB) (N backups before the newest, V(0B) is the newest), seconds since the epoch, an ISO
        8601 date or date-time (local time unless it ends in C(Z) or an offset), or a duration back from now in the
        collection's duration grammar, rdiff-backup's units (V(3d), V(2w), V(1M) thirty days, V(90m) ninety minutes).
      - With O(engine=restic) also V(latest), a backup set id (the snapshot's tag, the newest snapshot with it) or a
        snapshot id or its prefix (4 or more hex digits).
    type: str
    default: now
  state:
    description:
      - V(present) restores only into a missing or empty O(dest).
      - V(replaced) also replaces a non-empty O(dest).
    type: str
    choices: [present, replaced]
    default: present
  keep_replaced:
    description:
      - With O(state=replaced), keep the old data directory (as C(<dest>.replaced-<time>)) instead of deleting it once
        the restored tree is in place.
    type: bool
    default: true
  verify:
    description:
      - Run C(rdiff-backup verify --at) on the chosen backup before restoring and refuse to restore a damaged one.
      - Reads the whole backup once more, so it about doubles the time. Without it the restore still fails when
        rdiff-backup reports a file it could not rebuild or whose checksum does not match, or when an entry is missing.
    type: bool
    default: false
  owner:
    description:
      - Make this user own the whole restored tree (e.g. V(omero-server) when user ids differ from the backed-up host).
      - By default the owners recorded in the backup are restored.
    type: str
  group:
    description:
      - Make this group own the whole restored tree.
    type: str
  include:
    description:
      - O(engine=restic) only. Restore only these absolute paths of the snapshot, the ones M(omero.backup.datadir_backup)
        stored with its C(extra) option (the set's dump and config), into O(dest), each at O(dest) plus its
        absolute path. O(dest) must be missing (it is made, mode 0700) or empty; nothing is swapped in, and no
        repository uuid or database is checked. The restore role stages a restic set's dump and config so.
    type: list
    elements: path
    default: []
  db:
    description:
      - OMERO database whose C(omero.db.uuid) must match the backup's C(.omero/repository/<uuid>).
      - Unset, the check is skipped; when the database cannot be reached, a warning says it was skipped.
    type: str
'''

EXAMPLES = r'''
- name: Restore the newest backup into an empty /OMERO, checking it belongs to the restored database
  omero.backup.datadir_restore:
    src: /mnt/backup_server/omero-data
    dest: /OMERO
    db: omero
    login_user: postgres

- name: Replace /OMERO with the backup of 3 days ago from the backup host
  omero.backup.datadir_restore:
    src: backup_server.example.com::/backup/omero
    dest: /OMERO
    at: 3D
    state: replaced
    ssh_user: omero-backup
    ssh_key: /root/.ssh/omero_backup_ed25519
'''

RETURN = r'''
src:
  description: The repository restored from.
  returned: always
  type: str
dest:
  description: The data directory restored into.
  returned: always
  type: str
increment_time:
  description: UTC time of the backup restored (or that would be, or already was).
  returned: when the repository could be read
  type: str
  sample: "2026-11-26T08:09:13Z"
increment_epoch:
  description: The same time in seconds since the epoch (restic, with microseconds).
  returned: when the repository could be read
  type: float
increments:
  description: Number of backups in the repository.
  returned: when the repository could be read
  type: int
verified:
  description: V(true) when O(verify) passed, V(false) when it found damage, V(null) when not run.
  returned: always
  type: bool
corrupted_files:
  description: Repository files that failed verify (at most 20).
  returned: when verify failed
  type: list
  elements: str
repository_uuids:
  description: The C(.omero/repository/<uuid>) directories holding a C(repo_uuid) in the backup.
  returned: when the repository could be read
  type: list
  elements: str
db_uuid:
  description: C(omero.db.uuid) of O(db), V(null) when not checked.
  returned: always
  type: str
uuid_match:
  description: Whether RV(db_uuid) is among RV(repository_uuids); V(null) when not checked.
  returned: always
  type: bool
dest_state:
  description: What O(dest) was before the run, V(missing), V(empty) or V(populated).
  returned: when O(dest) could be examined
  type: str
replaced_path:
  description: Where the old data directory was kept, V(null) when nothing was replaced or it was deleted.
  returned: always
  type: str
staging:
  description: Where the restore was staged before the swap.
  returned: when a restore ran or would run
  type: str
files:
  description: Entries in the restored tree.
  returned: when a restore ran or the tree already matched
  type: int
duration:
  description: Seconds the task took.
  returned: when a restore ran
  type: float
commands:
  description: The rdiff-backup restore command line (in check mode, with a placeholder staging path).
  returned: always
  type: list
  elements: list
lock:
  description: The lock file serialising runs against the repository.
  returned: when a restore ran or would run
  type: str
leftovers:
  description:
    - Staging trees of killed restores of O(dest) removed before this restore (in check mode, that would be removed).
  returned: when the data dir's lock was taken, or in check mode
  type: list
  elements: str
  sample: ["/OMERO/.omero-backup-restore.3f2a9c1e0b7d.k2j4h5g6"]
leftovers_bytes:
  description: Bytes in RV(leftovers).
  returned: when the data dir's lock was taken, or in check mode
  type: int
missing_entries:
  description:
    - Entries of the backup that the restored tree lacks (at most 20), as C(rdiff-backup list files) prints them
      (bytes that are not UTF-8 as U+FFFD), escaped; the restore then fails and O(dest) is left as it was.
  returned: when the restore was incomplete
  type: list
  elements: str
datadir_lock:
  description:
    - The lock file of the data dir (shared with M(omero.backup.cleanse)), held while the restore runs, so a
      cleanse and a restore of the same data dir never overlap.
  returned: when a restore ran (check mode takes no lock)
  type: str
rc:
  description: Exit code of C(rdiff-backup restore).
  returned: when a restore ran
  type: int
rdiff_backup_version:
  description: Version of the local rdiff-backup.
  returned: when rdiff-backup could be run
  type: str
restic_version:
  description: Version of the local restic.
  returned: when O(engine=restic) and restic could be run
  type: str
warnings_list:
  description: The warnings of this run (also shown as task warnings).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import restore_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.datadir.restore import restore_datadir
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step


def main():
    module = AnsibleModule(argument_spec=restore_argument_spec(), supports_check_mode=True)
    # A restic repository (sftp:, rest:, s3:) is checked by the restic adapter's parse_location.
    check_params(module, locations=['src'] if module.params['engine'] != 'restic' else [])
    run_step(module, restore_datadir, module.params, module_runner(module), check_mode=module.check_mode, keep_warnings=True)


if __name__ == '__main__':
    main()
