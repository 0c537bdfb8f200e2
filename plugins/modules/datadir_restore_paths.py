#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: datadir_restore_paths
short_description: Restore single filesets, users' directories or paths of the OMERO binary repository
version_added: 0.2.0
description:
  - Granular restore. Restores some paths of one backup of the data directory into the live data directory or a
    scratch directory, next to what is already there. M(omero.backup.datadir_restore) restores a whole backup and
    swaps it in; this module merges.
  - What to restore is given by O(paths) (relative to the data directory), O(filesets) (fileset ids, resolved through
    the database to their directory under C(ManagedRepository) and the import logs linked to them) and O(users)
    (OMERO user names, resolved to C(ManagedRepository/<omename>_<id>), the server's default
    C(omero.fs.repo.path) template).
  - The paths of the chosen backup are first written into a private staging directory (mode 0700, beside O(dest), or
    inside it when it is a mount point, so that each move is one rename on the same filesystem). Nothing moves into
    O(dest) unless every requested path is in the backup and the engine reported no problem.
  - Then each entry moves in by one rename, through directory descriptors that never follow a symlink. An entry
    missing in O(dest) is restored (a missing directory at once, with everything in it); a file identical to the
    backup's is skipped; a file that differs is refused unless O(overwrite) allows it. A file where the backup has a
    directory, a directory where it has a file, or a symlink in O(dest) where the backup has a directory is always
    refused. Refused paths are listed in RV(refused) and in a warning; the task does not fail for them.
  - Directories already in O(dest) keep their owner and mode. Restored entries get the owner and mode recorded in
    the backup (run as root) unless O(owner) or O(group) force them.
  - When O(dest) holds C(.omero/repository/<uuid>/repo_uuid), the backup must hold the same C(<uuid>), and when O(db)
    is set its C(omero.db.uuid) must be among the backup's; files of another OMERO are never merged in.
  - File names are bytes and come back byte for byte; names in results are shown escaped (C(\xe9)), with their exact
    bytes in RV(names_b64).
  - The engines. V(restic) restores the paths of one snapshot with C(restic restore --include) (the directories
    above them come with the backup's owner and mode). V(rdiff-backup) runs one C(rdiff-backup restore --at) per
    path; the directories above a path that O(dest) lacks are made with the owner and mode of the nearest directory
    O(dest) has.
extends_documentation_fragment:
  - omero.backup.rdiff_ssh
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
  - omero.backup.durations
attributes:
  check_mode:
    details:
      - Restores the paths into the private staging directory, compares them with O(dest) exactly as a real run
        would, reports what would be restored, skipped and refused, and removes the staging directory. Nothing in
        O(dest) changes; no lock is taken.
  diff_mode:
    details:
      - Lists the entries that are (or would be) restored.
notes:
  - While it restores, the module holds the repository's lock and the data dir's lock (the one
    M(omero.backup.cleanse) and M(omero.backup.datadir_restore) take); staging trees of killed restores of O(dest)
    are removed first (RV(leftovers)).
  - The server may keep using the data directory meanwhile; a fileset restored under a running server is seen by
    it at once, since OMERO reads ManagedRepository files by their path.
requirements:
  - The engine's tool (restic, or rdiff-backup 2.2 or newer) on the managed host.
  - psycopg2 on the managed host when O(db) is set.
options:
  src:
    description:
      - The repository, as M(omero.backup.datadir_restore) takes it.
    type: str
    required: true
  dest:
    description:
      - Where to restore, the live OMERO data directory or a scratch directory; paths keep their place relative to it.
      - A missing O(dest) is made (its parent must exist), holding only the restored paths; it is private (mode 0700,
        owned by the user the module runs as, or by O(owner) and O(group)).
    type: path
    default: /OMERO
  at:
    description:
      - Which backup to restore from, as in M(omero.backup.datadir_restore) (V(now), the newest; a time; a duration
        back; and what the engine adds, such as a restic snapshot id or a backup set id).
    type: str
    default: now
  paths:
    description:
      - Paths relative to the data directory (V(ManagedRepository/user-1_2/2026-11/26), V(Files/Dir-001/1234)). A
        directory is restored with everything in it. Absolute paths, C(..) and the whole data directory are refused.
    type: list
    elements: str
    default: []
  filesets:
    description:
      - Fileset ids. Each is resolved through O(db) (C(fileset) -> C(filesetentry) -> C(originalfile.path)) to the
        deepest directory of C(ManagedRepository) that holds all its files, plus the import logs linked to its jobs
        (C(filesetjoblink) -> C(joboriginalfilelink)), when the database has those tables.
    type: list
    elements: int
    default: []
  users:
    description:
      - OMERO user names (C(experimenter.omename)); each is resolved through O(db) to C(ManagedRepository/<omename>_<id>).
    type: list
    elements: str
    default: []
  overwrite:
    description:
      - What to do with a file (or symlink) of O(dest) whose content differs from the backup's.
      - V(never) refuses it. V(newer) replaces it only when its modification time is not newer than the backup's
        copy (a file changed after the backup stays). V(always) replaces it.
      - Identical files are skipped whatever this says; a replaced file is replaced by one rename, its old content is
        not kept.
    type: str
    choices: [never, newer, always]
    default: never
  owner:
    description:
      - Make this user own every restored entry. By default the owners recorded in the backup are restored.
    type: str
  group:
    description:
      - Make this group own every restored entry.
    type: str
  db:
    description:
      - The OMERO database; needed for O(filesets) and O(users), and checked against the backup's repository uuid.
    type: str
'''

EXAMPLES = r'''
- name: Bring back fileset 1234, deleted by mistake, into the live data dir
  omero.backup.datadir_restore_paths:
    engine: restic
    src: /backup/omero-restic
    dest: /OMERO
    filesets: [1234]
    db: omero
    login_user: postgres

- name: Look at one user's files as they were three days ago, in a scratch dir
  omero.backup.datadir_restore_paths:
    src: /mnt/backup_server/omero-data
    dest: /srv/scratch/user-1
    at: 3d
    users: [user-1]
    db: omero

- name: Restore two pixel files, replacing damaged copies
  omero.backup.datadir_restore_paths:
    src: /mnt/backup_server/omero-data
    paths: [Pixels/Dir-001/1001, Pixels/Dir-001/1002]
    overwrite: always
'''

RETURN = r'''
src:
  description: The repository restored from.
  returned: always
  type: str
dest:
  description: The directory restored into (symlinks resolved).
  returned: always
  type: str
requested:
  description: The paths restored, relative to O(dest), after filesets and users were resolved (escaped names).
  returned: when the options could be resolved
  type: list
  elements: str
filesets:
  description: Each fileset id (as a string) and the paths it was resolved to.
  returned: when O(filesets) was given and resolved
  type: dict
users:
  description: Each user name and the directory it was resolved to.
  returned: when O(users) was given and resolved
  type: dict
point_id:
  description: The backup restored from, as the engine names it (a restic snapshot id, an rdiff-backup epoch).
  returned: when the repository could be read
  type: str
increment_time:
  description: UTC time of that backup.
  returned: when the repository could be read
  type: str
increment_epoch:
  description: The same time in seconds since the epoch.
  returned: when the repository could be read
  type: int
increments:
  description: Number of backups in the repository.
  returned: when the repository could be read
  type: int
restored:
  description: Entries (files, symlinks) restored, or that would be, replaced ones included (at most 1000).
  returned: when the staging tree was merged or compared
  type: list
  elements: str
replaced:
  description: Files of O(dest) replaced by the backup's copy under O(overwrite) (at most 1000).
  returned: when the staging tree was merged or compared
  type: list
  elements: str
skipped:
  description: Files identical in O(dest) and in the backup, left alone (at most 1000).
  returned: when the staging tree was merged or compared
  type: list
  elements: str
refused:
  description: Entries left as they are in O(dest) although the backup's differ, each with the reason (at most 1000).
  returned: when the staging tree was merged or compared
  type: list
  elements: dict
counts:
  description: How many entries were restored, replaced, skipped, refused, and directories restored (complete counts).
  returned: when the staging tree was merged or compared
  type: dict
  sample: {"restored": 12, "replaced": 0, "skipped": 3, "refused": 1, "directories": 4}
truncated:
  description: Whether a list was cut at 1000 names (RV(counts) stays complete).
  returned: when the staging tree was merged or compared
  type: bool
absent:
  description: Requested paths the backup does not hold; the task then fails and nothing is restored.
  returned: when a requested path was not in the backup
  type: list
  elements: str
names_b64:
  description: For each name shown escaped in this result, its exact bytes in base64.
  returned: always
  type: dict
overwrite:
  description: The O(overwrite) policy applied.
  returned: always
  type: str
repository_uuids:
  description: The C(.omero/repository/<uuid>) directories holding a C(repo_uuid) in the backup.
  returned: when the repository could be read
  type: list
  elements: str
db:
  description: O(db).
  returned: always
  type: str
db_uuid:
  description: C(omero.db.uuid) of O(db), V(null) when not read.
  returned: always
  type: str
uuid_match:
  description: Whether RV(db_uuid) is among RV(repository_uuids); V(null) when not checked.
  returned: always
  type: bool
staging:
  description: Where the staging directory was made.
  returned: when a restore ran or would run
  type: str
rc:
  description: Exit code of the engine's restore.
  returned: when a restore ran
  type: int
commands:
  description: The engine's command lines.
  returned: always
  type: list
  elements: list
lock:
  description: The lock file serialising runs against the repository.
  returned: when the repository was named
  type: str
datadir_lock:
  description: The lock file of the data dir (shared with M(omero.backup.cleanse)), held while the paths move in.
  returned: when a restore ran (check mode takes no lock)
  type: str
leftovers:
  description: Staging trees of killed restores of O(dest) removed first (in check mode, that would be removed).
  returned: when O(dest) existed and its lock was taken, or in check mode
  type: list
  elements: str
leftovers_bytes:
  description: Bytes in RV(leftovers).
  returned: when O(dest) existed and its lock was taken, or in check mode
  type: int
duration:
  description: Seconds the task took.
  returned: on success
  type: float
warnings_list:
  description: The warnings of this run (also shown as task warnings).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.datadir.granular import granular_argument_spec, restore_paths
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step


def main():
    module = AnsibleModule(argument_spec=granular_argument_spec(), supports_check_mode=True)
    # src is an rdiff-backup location (/path or host::/path) or a restic repository (also sftp:, rest:, s3:), which
    # the restic engine's own parser checks.
    check_params(module, locations=['src'] if module.params['engine'] == 'rdiff-backup' else [])
    run_step(module, restore_paths, module.params, module_runner(module), check_mode=module.check_mode, keep_warnings=True,
             errors=(OSError,))


if __name__ == '__main__':
    main()
