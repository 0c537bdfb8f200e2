#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: cleanse
short_description: Remove orphaned files from an OMERO binary repository, refusing when the database does not match
version_added: 0.1.0
description:
  - Removes what C(omero admin cleanse /OMERO) removes, files under C(Pixels/), C(Files/) and C(Thumbnails/)
    whose id has no row in C(pixels), C(originalfile) or C(thumbnail), and the C(Dir-NNN) directories left empty.
  - The id comes from the file name only, by OMERO's rule, C(<id>), C(<id>_pyramid), C(.<id>_pyramid.pyr_lock)
    and C(.<id>_pyramid<anything>.tmp). Any other name, and any directory not named C(Dir-NNN), is kept untouched.
  - With O(backend=database) (the default) the module reads the OMERO database directly, read-only, once per table,
    and checks the directory walk against those ids. It needs neither a running OMERO.server nor a login, so it
    also works during a restore window.
  - With O(backend=omero) it runs the real C(omero admin cleanse) as the OMERO system user, logged in as an OMERO
    administrator, and parses its output into the same result.
  - Before removing anything the module refuses, and says why, when the data directory holds no
    C(.omero/repository/<omero.db.uuid>) directory for the database, when orphans carry ids far above the
    database's highest id (the mark of an older dump restored under a newer data directory), or when the database
    is unreachable or lacks the OMERO tables. O(force) overrides the first two.
  - Files younger than O(min_age) are never removed.
  - Removes through descriptors of the directories opened from O(datadir) down without following a symlink, each
    checked against the identity (device and inode) the walk recorded; a directory replaced since the walk (for
    example a C(Dir-NNN) swapped for a symlink) is skipped whole and reported in RV(errors).
  - C(Pixels/), C(Files/) and C(Thumbnails/) may be symlinks to other volumes; such a link is followed only when root
    owns it or its owner owns the directory it leads to, otherwise the module refuses and removes nothing.
  - With O(state=restored) it moves a quarantine made by O(quarantine_dir) back into O(datadir) instead, see
    O(state).
  - Takes the data dir lock (C(omero-backup-datadir-<hash of the real path of datadir>.lock) in O(lock_dir)) before
    anything else, so a second cleanse of the same data dir fails at once, naming the pid of the one running, and
    removes nothing.
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
  - omero.backup.durations
attributes:
  check_mode:
    details:
      - Check mode is C(omero admin cleanse --dry-run), it lists what would be removed and removes nothing. It takes no
        lock.
      - With O(state=restored), check mode runs every check of the undo and lists what would be moved back; it
        fails on the same refusals as a real run and moves nothing.
  diff_mode:
    details:
      - The diff lists the removed files (at most O(max_listed) of them).
options:
  state:
    description:
      - V(cleansed) removes (or quarantines) the orphans.
      - V(restored) is the undo of a quarantine, it moves every file of O(quarantine_dir) back to its path in
        O(datadir) with the owner, mode and modification time it had, remakes the directories the cleanse removed
        or emptied with their owner, mode and modification time, and sets the modification time of every directory
        it touched back to the one the cleanse found. The database is not read.
      - Before moving anything it refuses, and moves nothing, when a file in the quarantine has no completion record
        in its journal (a copy an interrupted or failed run left), has another size than recorded, would overwrite a
        file that exists in O(datadir), or when a directory on the way is a symlink in O(datadir).
      - Needs O(quarantine_dir). Restored files are gone from the quarantine afterwards, and so are its emptied
        directories and, once empty, its journal.
    type: str
    choices: [cleansed, restored]
    default: cleansed
  datadir:
    description:
      - The OMERO binary repository (C(omero.data.dir), C(omero_server_datadir)).
    type: path
    default: /OMERO
  db:
    description:
      - Name of the OMERO database (C(omero_server_dbname)).
      - Read with O(backend=database); with O(backend=omero) it feeds the interlocks.
    type: str
    default: omero
  backend:
    description:
      - V(database) decides from read-only SQL against the OMERO database; the server may be stopped.
      - V(omero) runs C(omero admin cleanse) against a running OMERO.server.
    type: str
    choices: [database, omero]
    default: database
  subdirectories:
    description:
      - Which of the three directories to cleanse.
    type: list
    elements: str
    choices: [Pixels, Files, Thumbnails]
    default: [Pixels, Files, Thumbnails]
  managed_repository_empty_dirs:
    description:
      - Also let OMERO.server remove empty directories from C(ManagedRepository), as a plain
        C(omero admin cleanse /OMERO) does. Files there are never touched.
      - Needs O(backend=omero) (omero-py 5.22 or later when not all three O(subdirectories) are cleansed), the
        server removes those directories together with their database rows.
    type: bool
    default: false
  quarantine_dir:
    description:
      - Move orphans here, under the same path relative to O(datadir), instead of deleting them, so a cleanse
        can be undone with O(state=restored).
      - On the same filesystem as O(datadir) each orphan is hard-linked here and then unlinked from O(datadir);
        on another filesystem it is copied to a temporary name, synced to disk, checked (size and sha256), given
        its final name (never replacing a file), and only then removed from O(datadir). A failure, a full quarantine filesystem included,
        removes the temporary copy and leaves the original where it was, reported in RV(errors).
      - Every file gets a completion record in C(.omero-cleanse-journal) (mode 0600) before its original is
        removed; the undo trusts nothing else.
      - Directories made here get the owner, mode and modification time of their O(datadir) counterparts. The
        directory itself is made with mode 0700 when missing; an existing one must belong to the user running the
        module and have mode 0700 (no access for group or others, since the undo trusts what is below it).
      - A file already present at its quarantine path is left in place and reported in RV(errors).
      - Must not be inside one of the cleansed directories. Needs O(backend=database).
    type: path
  min_age:
    description:
      - Files modified more recently than this are never removed (OMERO.server may be writing them).
      - A duration such as V(90m), V(1h), V(2d), or a number of seconds (see the notes on durations; V(1m) is one
        minute, V(1M) thirty days).
      - With O(backend=omero), which cannot skip single files, any young orphan makes the module refuse.
    type: str
    default: 1h
  max_id_margin:
    description:
      - How far above the database's highest id of its type an orphan's id may be before the module refuses.
      - Objects deleted right after creation legitimately leave orphans a little above the highest id; many files
        far above it mean the database is older than the data directory.
    type: int
    default: 1000
  force:
    description:
      - Cleanse although the data directory's C(.omero/repository) does not name the database, or orphans carry ids
        above the database's highest id plus O(max_id_margin).
      - With O(backend=omero), also when the database cannot be reached for these checks.
      - Never overrides O(min_age).
    type: bool
    default: false
  max_listed:
    description:
      - At most this many paths in RV(listed) and RV(kept_unknown_listed).
    type: int
    default: 100
  report_file:
    description:
      - Write the full list of orphans here, one C(path<TAB>bytes<TAB>action) line each, paths relative to
        O(datadir) and escaped as in RV(listed), actions V(would_remove), V(removed), V(quarantined), V(kept_young) (touched since the walk),
        V(vanished) (gone before its turn) or V(kept) (could not be removed, see RV(errors)). Written atomically,
        mode 0600, also in check mode.
    type: path
  omerodir:
    description:
      - OMERO.server directory (C(OMERODIR)) for O(backend=omero).
    type: path
    default: /opt/omero/server/OMERO.server
  omero_command:
    description:
      - The C(omero) executable for O(backend=omero); default C(OMERODIR/bin/omero).
    type: path
  user:
    description:
      - The OMERO system user that runs C(omero) (C(omero admin cleanse) must run as the owner of O(datadir)).
    type: str
    default: omero-server
  profile:
    description:
      - OMERO configuration profile (C(OMERO_CONFIG)) for O(backend=omero).
    type: str
  omero_host:
    description:
      - OMERO.server to log in to with O(backend=omero).
    type: str
    default: localhost
  omero_port:
    description:
      - Port of the OMERO.server.
    type: int
    default: 4064
  omero_user:
    description:
      - OMERO full administrator to log in as.
    type: str
    default: root
  omero_password:
    description:
      - Password of O(omero_user), handed to C(omero) in the C(OMERO_PASSWORD) environment variable only.
    type: str
  lock_dir:
    description:
      - Directory of the data dir lock file.
      - Unset takes the collection's lock directory, C(/run/omero-backup) for root (made with mode 0700 when missing), C(~/.omero-backup-locks)
        of the running user otherwise. A lock directory must be owned by the running user or root, writable by its
        owner only, and not a symlink; a lock file in it that another user made (or a symlink) is refused with a
        message naming its owner, so no local user can hold or redirect the lock.
      - Every run against the same data dir must use the same directory (runs as different users do not share the
        default one).
    type: path
  session_idle_timeout:
    description:
      - Seconds the OMERO session may stay idle (C(omero sessions timeout)), so a long cleanse is not logged out
        after the server's 10 minute default. V(0) leaves the server's setting.
    type: int
    default: 3600
notes:
  - The module is idempotent, a second run finds nothing more to remove.
  - With O(backend=database) the module must run as a user allowed to remove files from O(datadir) (root or the
    OMERO system user); the database role needs only C(SELECT) on C(configuration), C(pixels), C(originalfile) and
    C(thumbnail).
  - With O(backend=omero), C(omero admin cleanse) itself removes the files; RV(removed) counts the listed files
    that are gone afterwards.
  - The data dir lock keeps two cleanses apart on this host, and a cleanse apart from a
    M(omero.backup.datadir_restore) into the same data dir, which takes the same lock.
'''

EXAMPLES = r'''
- name: List the orphans only
  omero.backup.cleanse:
    datadir: /OMERO
    db: omero
    login_user: postgres
    report_file: /var/tmp/omero-orphans.tsv
  check_mode: true
  become: true

- name: Cleanse into a quarantine that can be moved back
  omero.backup.cleanse:
    datadir: /OMERO
    quarantine_dir: /OMERO-quarantine/2026-11-26
    login_user: postgres
  become: true

- name: Undo that cleanse, moving the quarantined files back with their owners, modes and times
  omero.backup.cleanse:
    state: restored
    datadir: /OMERO
    quarantine_dir: /OMERO-quarantine/2026-11-26
  become: true

- name: Cleanse with the server's own tool, ManagedRepository empty directories included
  omero.backup.cleanse:
    backend: omero
    datadir: /OMERO
    omero_user: root
    omero_password: "{{ omero_root_password }}"
    managed_repository_empty_dirs: true
    login_user: postgres
  become: true
'''

RETURN = r'''
backend:
  description: The backend that decided.
  returned: always
  type: str
  sample: database
datadir:
  description: The data directory cleansed.
  returned: always
  type: str
db_uuid:
  description: C(omero.db.uuid) of the database, V(null) when it could not be read.
  returned: always
  type: str
subdirectories:
  description: Counts per cleansed directory.
  returned: always
  type: dict
  sample:
    Pixels: {entries: 25, orphans: 8, orphan_bytes: 1998, removed: 8, removed_bytes: 1998, kept_young: 0,
             kept_unknown: 2, empty_dirs: 2, empty_dirs_removed: 2, highest_orphan_id: 1002003005,
             above_max_id: 0, db_max_id: 1002003004, omero_queries: 1}
orphans:
  description: Orphans found old enough to remove.
  returned: always
  type: int
orphan_bytes:
  description: Their total size.
  returned: always
  type: int
removed:
  description: Orphans removed (or moved to the quarantine); 0 in check mode.
  returned: always
  type: int
removed_bytes:
  description: Bytes removed.
  returned: always
  type: int
quarantine_dir:
  description: Where orphans were moved, V(null) when they were deleted.
  returned: always
  type: str
listed:
  description:
    - Paths of orphans relative to O(datadir), at most O(max_listed); with O(state=restored) the paths moved back
      (or, in check mode, to be moved back).
    - Every file name in the results (RV(listed), RV(kept_unknown_listed), RV(managed_dirs_removed), RV(errors))
      and in O(report_file) is escaped so that it is valid text whatever its bytes, one to one, a name that is
      printable UTF-8 is shown as it is (blanks and accents included), a backslash as two, a newline, tab and
      carriage return as C(\n), C(\t), C(\r), and every other byte (one that is not UTF-8, or of a non-printable
      character) as C(\xNN) with two lower-case hex digits. For example the bytes C(a<0xff>b) are shown as C(a\xffb).
  returned: always
  type: list
  elements: str
  sample: [Pixels/Dir-999/999002_pyramid, Files/998]
listed_truncated:
  description: Whether RV(listed) was cut at O(max_listed).
  returned: always
  type: bool
kept_young:
  description: Orphans kept because they are younger than O(min_age).
  returned: always
  type: int
kept_unknown:
  description: Entries kept because their names are not OMERO's (including directories not named C(Dir-NNN)).
  returned: always
  type: int
kept_unknown_listed:
  description: Some of them, relative to O(datadir), escaped as in RV(listed).
  returned: always
  type: list
  elements: str
empty_dirs:
  description: Directories that are, or would be, left empty and removed.
  returned: always
  type: int
empty_dirs_removed:
  description: Empty directories removed.
  returned: always
  type: int
managed_dirs_removed:
  description: Empty ManagedRepository directories OMERO.server removed (O(backend=omero)).
  returned: always
  type: list
  elements: str
report_file:
  description: The full list, when O(report_file) was given.
  returned: always
  type: str
queries:
  description: SQL queries the module ran.
  returned: always
  type: int
omero_equivalent_queries:
  description: Queries C(omero admin cleanse) makes for the same walk (one per 25 entries).
  returned: always
  type: int
restored:
  description: Files moved back from the quarantine with O(state=restored); 0 otherwise and in check mode.
  returned: always
  type: int
restored_bytes:
  description: Their total size.
  returned: always
  type: int
refused:
  description: Why the module refused (it then fails and removes, or with O(state=restored) moves, nothing).
  returned: always
  type: list
  elements: str
forced:
  description: Interlocks that fired and were overridden with O(force).
  returned: always
  type: list
  elements: str
errors:
  description:
    - Files that could not be removed, moved or restored, and directories skipped because they changed since the
      walk, each with the reason (the module then fails). Paths are escaped as in RV(listed).
  returned: always
  type: list
  elements: str
duration:
  description: Seconds the module took.
  returned: always
  type: float
lock:
  description: The data dir lock file held during the run, V(null) in check mode (which takes none).
  returned: always
  type: str
  sample: /run/omero-backup/omero-backup-datadir-0c2b4f1e9a8d7c6b5a41.lock
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import argument_spec
from ansible_collections.omero.backup.plugins.module_utils.cleanse.run import cleanse_task
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[('state', 'restored', ('quarantine_dir',))])
    check_params(module)
    run_step(module, cleanse_task, module.params, module_runner(module), module.check_mode)


if __name__ == '__main__':
    main()
