#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: datadir_backup
short_description: Back up the OMERO binary repository with rdiff-backup or restic
version_added: 0.1.0
description:
  - Adds one rdiff-backup increment of the OMERO data directory (C(omero.data.dir), C(/OMERO)) to a repository on a
    local path or, over ssh, on a backup host (C(host::/path)); the backup host needs only rdiff-backup installed.
  - Uses the rdiff-backup 2.2 action syntax (C(rdiff-backup backup SRC DEST)); the older C(rdiff-backup SRC DEST) form of
    the OMERO docs is deprecated.
  - Everything is backed up except regenerable caches, including C(.omero/repository/<uuid>/repo_uuid) (which ties the
    directory to its database), C(ManagedRepository), C(FullText) and the C(backup) directory holding dumps and config.
  - Takes a lock of its own per repository (rdiff-backup's lock is not reliable), so a second run against the same
    repository fails at once. For a local O(dest) the lock is a sibling file C(.<name>.omero-backup.lock); for a remote
    one it is a local file keyed by C(host::path) in the collection's lock directory (C(/run/omero-backup), mode 0700,
    for root; C(~/.omero-backup-locks) for another user), which serialises runs from this host only.
  - A run that finds an earlier backup interrupted (killed, host crashed) lets rdiff-backup roll it back first and says
    so in RV(regressed); rdiff-backup then exits 2, which this module does not count as a failure.
  - rdiff-backup exit codes are bit flags; an error (1) or a file error (4) fails the task, a warning (2, 8) is
    reported in RV(warnings_list).
  - After the backup, O(verify) checks every file of the newest backup against its recorded checksum.
  - Restore leftovers are never backed up. A restore killed mid-copy (kill -9, a crash) leaves a full-size staging
    tree C(.omero-backup-restore.*) inside O(src) (when O(src) is a mount point) or beside it; before backing up, the
    module takes the data dir's lock (the one every restore and cleanse holds), removes the leftovers that belong to
    O(src) and reports them in RV(leftovers). When another run holds the lock they stay, with a warning. Top-level
    C(.omero-backup-restore.*) and C(omero-backup-replaced-*) (old content a restore kept) are always excluded.
  - File names are bytes and are backed up as they are; names in results that are not printable UTF-8 are shown
    escaped (C(\xe9), C(\n)).
  - With O(engine=restic), each run makes one restic snapshot holding the data dir (as its root) and the O(extra)
    paths (at their absolute paths), tagged with O(label); the repository is initialised when missing (check mode
    says it would). restic exit code 3 (some source files unreadable) makes an incomplete snapshot, which is
    forgotten at once and fails the task naming the files; the next run works as usual. O(verify) runs
    C(restic check) with the data read O(verify_read_data) asks for; retention is C(restic forget) with the
    O(keep_last), O(keep_daily), O(keep_weekly), O(keep_monthly) and O(keep_increments_for) policy, then
    C(restic prune).
extends_documentation_fragment:
  - omero.backup.rdiff_ssh
  - omero.backup.attributes
  - omero.backup.attributes.diff_none
  - omero.backup.durations
attributes:
  check_mode:
    details:
      - Checks the source, the destination (for a remote one, that ssh and rdiff-backup answer) and reports the
        commands it would run and the increments retention would remove.
notes:
  - Not idempotent by nature, since every run adds an increment; use O(skip_if_newer_than) to make repeated runs
    V(changed=false).
  - rdiff-backup cannot follow symbolic links. In-place imports leave links in C(ManagedRepository) that point outside
    the data dir; they are stored as links, and RV(symlinks) tells how many point outside and where, so that their
    targets can be backed up too.
  - Run as root (or the owner of every file) so that ownership and permissions are recorded.
requirements:
  - rdiff-backup 2.2 or newer on the managed host and, for a remote O(dest), on the backup host.
  - For O(engine=restic), restic 0.14 or newer on the managed host (and an sftp server on the backup host for
    C(sftp:) repositories).
options:
  src:
    description:
      - The OMERO data directory (C(omero_server_datadir)).
    type: path
    default: /OMERO
  dest:
    description:
      - The rdiff-backup repository, a local absolute path or C([user@]host::/absolute/path) over ssh.
      - With O(engine=restic), the restic repository, a local absolute path, C(sftp:[user@]host:/path) (over the ssh
        options below), C(rest:http(s\)://host:port/path) or C(s3:http(s\)://host:port/bucket[/prefix]).
      - A local O(dest) must be absent, empty or an existing repository; its parent must exist (so an unmounted
        backup volume fails instead of filling the root filesystem).
    type: str
    required: true
  exclude:
    description:
      - Glob patterns, relative to O(src), of what not to back up (C(**) crosses directories).
      - Setting this replaces the default list. Restore leftovers at the top of O(src)
        (C(.omero-backup-restore.*), C(omero-backup-replaced-*)) are excluded whatever this says.
    type: list
    elements: str
    default: ['BioFormatsCache', '.omero/**/.lock', 'ManagedRepository/.omero/**/.lock']
  exclude_fulltext:
    description:
      - Also exclude C(FullText), the Lucene search index. Saves space, but a restore then needs a full reindex before
        searches work; the result carries a warning saying so.
    type: bool
    default: false
  symlinks_outside:
    description:
      - What to do about symbolic links that point outside O(src) (in-place imports). They are always stored as links.
      - V(warn) adds a warning naming where they point, V(fail) refuses to back up, V(ignore) only counts them.
    type: str
    choices: [warn, fail, ignore]
    default: warn
  verify:
    description:
      - Run C(rdiff-backup verify) on the repository after the backup and fail when any file does not match its
        recorded checksum.
      - It reads the whole newest backup, so it takes about as long as a full read of the data.
    type: bool
    default: true
  keep_increments_for:
    description:
      - Remove increments older than this duration, e.g. V(8w) or V(6M) (six months; V(6m) is six minutes, see the
        notes on durations). The newest backup is never removed.
      - With O(engine=restic), C(restic forget --keep-within) of this duration rounded up to whole hours, counted
        back from the newest snapshot (restic's rule), combined with the O(keep_last) ... O(keep_monthly) policy.
      - Runs C(rdiff-backup --force remove increments --older-than NNNs), the duration in seconds, after a successful
        backup (or a skipped one).
    type: str
  skip_if_newer_than:
    description:
      - Do nothing (V(changed=false)) when the newest backup in O(dest) is younger than this duration, e.g. V(20h)
        (see the notes on durations).
    type: str
  label:
    description:
      - O(engine=restic) only. The backup set id, stored as a tag on the snapshot so a restore can name the set
        (C(at)). May not hold a comma.
    type: str
  extra:
    description:
      - O(engine=restic) only. Further absolute paths (the set's database dump and config) stored in the same
        snapshot, so that restic's encryption covers their secrets. Each must exist, lie outside O(src), and its
        first path component must not be a top-level name of O(src).
    type: list
    elements: path
    default: []
  keep_last:
    description:
      - O(engine=restic) only. Keep the newest N snapshots (C(forget --keep-last)). Whatever the policy, the newest
        snapshot always stays.
    type: int
  keep_daily:
    description:
      - O(engine=restic) only. Keep the newest snapshot of each of the last N days.
    type: int
  keep_weekly:
    description:
      - O(engine=restic) only. Keep the newest snapshot of each of the last N weeks.
    type: int
  keep_monthly:
    description:
      - O(engine=restic) only. Keep the newest snapshot of each of the last N months.
    type: int
  verify_read_data:
    description:
      - O(engine=restic) only. What O(verify) reads besides the repository structure (C(restic check)).
      - V(none) reads no pack data; V(all) reads every pack (C(--read-data)); V(rotating) reads part n of
        O(verify_rotation) (C(--read-data-subset n/N)), n advancing after each successful verify, so the whole
        repository is read over O(verify_rotation) runs; V(n/t), a percentage (V(5%)) or a size (V(500M)) is passed
        to C(--read-data-subset) as is.
    type: str
    default: none
  verify_rotation:
    description:
      - O(engine=restic) with O(verify_read_data=rotating). Number of parts the repository is read in.
    type: int
    default: 7
  verify_state_dir:
    description:
      - O(engine=restic) with O(verify_read_data=rotating). Directory (made 0700 if missing) of the 0600 state file
        that remembers the next part, one file per repository, written atomically.
    type: path
    default: /var/lib/omero-backup/state
  file_statistics:
    description:
      - Let rdiff-backup write its per-file statistics file for each backup. Off by default because it slows large
        backups and nothing here reads it.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Back up /OMERO to a mounted backup volume, keep 8 weeks
  omero.backup.datadir_backup:
    src: /OMERO
    dest: /mnt/backup_server/omero-data
    keep_increments_for: 8W
  register: datadir_backup

- name: Back up /OMERO to a backup host over ssh, at most once a day
  omero.backup.datadir_backup:
    src: /OMERO
    dest: backup_server.example.com::/backup/omero
    ssh_user: omero-backup
    ssh_key: /root/.ssh/omero_backup_ed25519
    ssh_options:
      - UserKnownHostsFile=/etc/omero-backup/known_hosts
    skip_if_newer_than: 20h

- name: Show what else needs a backup because of in-place imports
  ansible.builtin.debug:
    var: datadir_backup.symlinks.outside_dirs
'''

RETURN = r'''
src:
  description: The data directory backed up.
  returned: always
  type: str
  sample: /OMERO
dest:
  description: The repository, as rdiff-backup was given it.
  returned: always
  type: str
  sample: backup_server.example.com::/backup/omero
skipped:
  description: Whether the backup was skipped because of O(skip_if_newer_than).
  returned: always
  type: bool
increment_time:
  description: UTC time of the backup made now (or, when skipped, of the newest one).
  returned: when a backup was made or skipped
  type: str
  sample: "2026-11-26T08:09:13Z"
increment_epoch:
  description: The same time in seconds since the epoch, as C(rdiff-backup restore --at) takes it (restic, with
    microseconds).
  returned: when a backup was made
  type: float
snapshot_id:
  description: The restic snapshot made (full id), for the set record.
  returned: when O(engine=restic) made a snapshot
  type: str
snapshot_short_id:
  description: Its short id, as restic shows it.
  returned: when O(engine=restic) made a snapshot
  type: str
  sample: 0a1b2c3d
repository_initialized:
  description: Whether the restic repository was initialised by this run (in check mode, would be).
  returned: when O(engine=restic) initialised or would initialise the repository
  type: bool
verify:
  description: The facts of a restic verify, for status and metrics.
  returned: when O(engine=restic) and O(verify)
  type: dict
  contains:
    ok:
      description: Whether the check passed (V(null) in check mode).
      type: bool
    subset:
      description: The C(--read-data-subset) read (V(all), V(n/N), a percentage or size), V(null) for none.
      type: str
    rotation_part:
      description: The part read, with O(verify_read_data=rotating).
      type: int
    rotation_parts:
      description: O(verify_rotation), with O(verify_read_data=rotating).
      type: int
    packs_read:
      description: Data packs read, as restic reports them.
      type: int
    packs_total:
      description: Data packs in the repository, as restic reports them.
      type: int
    errors:
      description: restic's error lines (at most 20).
      type: list
      elements: str
    damaged_packs:
      description: Ids of packs restic found damaged.
      type: list
      elements: str
removed_locks:
  description: Stale restic locks removed (older than O(lock_lease), holder gone) before the command was retried.
  returned: when O(engine=restic) removed a lock
  type: list
  elements: dict
previous_increment_time:
  description: UTC time of the newest backup before this run, V(null) for a new repository.
  returned: always
  type: str
increments:
  description: Number of backups in the repository after the run (retention included).
  returned: when a backup was made or skipped
  type: int
files:
  description: Files, directories and links in the backed-up tree (rdiff-backup's C(SourceFiles)).
  returned: when a backup was made
  type: int
bytes:
  description: Bytes in the backed-up tree (C(SourceFileSize)).
  returned: when a backup was made
  type: int
changed_files:
  description: New, changed and deleted entries since the previous backup.
  returned: when a backup was made
  type: int
duration:
  description: Seconds the whole task took.
  returned: when a backup was made
  type: float
backup_duration:
  description: Seconds C(rdiff-backup backup) took.
  returned: when a backup was made
  type: float
verify_duration:
  description: Seconds C(rdiff-backup verify) took.
  returned: when O(verify=true) and a backup was made
  type: float
files_per_second:
  description: RV(files) divided by RV(backup_duration).
  returned: when a backup was made
  type: float
statistics:
  description: rdiff-backup's session statistics as printed by C(--print-statistics).
  returned: when a backup was made
  type: dict
  sample: {"SourceFiles": 1200, "SourceFileSize": 52428800, "NewFiles": 3, "ChangedFiles": 1, "Errors": 0}
regressed:
  description: Whether an earlier interrupted backup was rolled back before this one.
  returned: always
  type: bool
verified:
  description: V(true) when verify passed, V(false) when it found corruption, V(null) when not run.
  returned: always
  type: bool
corrupted_files:
  description: Repository files that failed verify (at most 20).
  returned: when verify failed
  type: list
  elements: str
pruned:
  description: UTC times of the increments removed by retention (in check mode, those that would be).
  returned: always
  type: list
  elements: str
leftovers:
  description:
    - Staging trees of killed restores of O(src) removed before the backup (in check mode, that would be removed).
  returned: when the source was examined
  type: list
  elements: str
  sample: ["/OMERO/.omero-backup-restore.3f2a9c1e0b7d.k2j4h5g6"]
leftovers_bytes:
  description: Bytes in RV(leftovers).
  returned: when the source was examined
  type: int
excluded:
  description: The C(--exclude) globs given to rdiff-backup, the restore leftovers' included.
  returned: when the arguments were valid
  type: list
  elements: str
symlinks:
  description: Symbolic links found in O(src) (outside C(BioFormatsCache)).
  returned: when a backup was made or would be
  type: dict
  contains:
    total:
      description: Number of links.
      type: int
    outside:
      description: Links whose target lies outside O(src); their targets are not in the backup.
      type: int
    outside_dirs:
      description: Directories holding those targets (at most 20).
      type: list
      elements: str
    outside_dirs_truncated:
      description: Whether more directories than listed hold targets.
      type: bool
    targets_not_utf8:
      description: Links whose target is not UTF-8 (restic 0.14 stores such targets lossily, and a warning says so);
        only when there are any.
      type: int
    targets_not_utf8_links:
      description: Those links (at most 20, escaped).
      type: list
      elements: str
commands:
  description: The rdiff-backup command lines run (in check mode, that would run).
  returned: always
  type: list
  elements: list
lock:
  description: The lock file serialising runs against this repository.
  returned: when a backup was made or would be
  type: str
rc:
  description: Exit code of C(rdiff-backup backup) (or C(restic backup)).
  returned: when a backup ran
  type: int
rdiff_backup_version:
  description: Version of the local rdiff-backup.
  returned: when rdiff-backup could be run
  type: str
  sample: 2.2.2
restic_version:
  description: Version of the local restic.
  returned: when O(engine=restic) and restic could be run
  type: str
  sample: 0.14.0
warnings_list:
  description: The warnings of this run (also shown as task warnings).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import backup_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step


def main():
    module = AnsibleModule(argument_spec=backup_argument_spec(), supports_check_mode=True)
    # A restic repository (sftp:, rest:, s3:) is checked by the restic adapter's parse_location.
    check_params(module, locations=['dest'] if module.params['engine'] != 'restic' else [])
    run_step(module, backup_datadir, module.params, module_runner(module), check_mode=module.check_mode, keep_warnings=True)


if __name__ == '__main__':
    main()
