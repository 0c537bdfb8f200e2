#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: db_archive
short_description: Set up pgBackRest and continuous WAL archiving for the OMERO database, or report their health
version_added: 0.2.0
description:
  - The set up the pgBackRest database engine (O(omero.backup.db_dump#module:engine=pgbackrest)) needs, idempotently.
  - With O(state=present) and O(side=database), on the database host, writes the pgBackRest configuration file
    O(config) (mode 0640 owned by root and the cluster user's group when run as root, else 0600), sets
    C(archive_mode=on), C(archive_command) (C(pgbackrest --config=<config> --stanza=<stanza> archive-push %p)) and
    C(archive_timeout) with C(ALTER SYSTEM) and reloads PostgreSQL. When the repository is on this host (no
    O(repo_host)) it then creates the stanza (only when pgBackRest does not know it) and runs C(pgbackrest check).
  - A change that needs a restart (C(archive_mode), or C(wal_level) when it is C(minimal)) is reported as
    RV(restart_required) and done only with O(restart_allowed=true); the check is then skipped, since no WAL is
    archived before the restart.
  - With O(side=repository), on a repository host (the store host, reaching the database host over ssh as
    O(pg_host_user)), writes that host's configuration file (0600, owned by O(repo_user)), makes O(repo_path) (0750)
    when missing, creates the stanza and runs the check there. pgBackRest creates stanzas on the host that holds the
    repository, so with two hosts run O(side=database) first (configuration and archiving), then O(side=repository).
  - With O(state=health), changes nothing and reports RV(health) - the age of the last full, diff and incr
    backup, the WAL archive's age as pgBackRest sees it (the newest segment in the repository) and, with
    O(side=database), as PostgreSQL sees it (C(pg_stat_archiver)), archive failures, the repository's size and the
    result of C(pgbackrest check) (O(check)). M(omero.backup.status) writes them as metrics.
  - With O(state=verify), changes nothing and runs C(pgbackrest verify), which reads every backup file and WAL
    segment of the repository and checks it against its checksum. pgBackRest 2.45 exits 0 even when it finds damage;
    this module reads its report and fails, naming the damaged files and the backups that are no longer valid.
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
attributes:
  check_mode:
    details:
      - Compares the configuration file, the PostgreSQL settings and the stanza with what they should be and reports
        what would change, with RV(restart_required). Writes nothing, runs no C(ALTER SYSTEM), no restart, no
        C(stanza-create) and no C(check).
  diff_mode:
    details:
      - Shows the configuration file before and after, with the cipher pass masked.
notes:
  - The cipher pass is written only into O(config); pgBackRest never gets it on its command line, and no task
    environment holds it. The repository's encryption is fixed when the stanza is created.
  - The connection (O(login_user)) must be a superuser, for C(ALTER SYSTEM) and C(pg_stat_archiver).
  - pgBackRest runs as O(pg_user) on the database host and as O(repo_user) on a repository host (through C(runuser)
    when the module runs as root).
  - The restart is C(systemctl restart) of O(pg_service) when given, else C(pg_ctl restart) of O(pg_path) as O(pg_user),
    the server then logging to C(omero-backup-restart.log) in O(pg_path).
options:
  state:
    description:
      - V(present) sets up pgBackRest and archiving; V(health) only reports RV(health); V(verify) runs
        C(pgbackrest verify) on the whole repository and fails when it finds a damaged or missing file (RV(verify)).
    type: str
    choices: [present, health, verify]
    default: present
  side:
    description:
      - V(database) on the database host (the cluster is local); V(repository) on a repository host that reaches the
        database host over ssh (O(pg_host)).
    type: str
    choices: [database, repository]
    default: database
  stanza:
    description:
      - The pgBackRest stanza of the OMERO cluster.
    type: str
    default: omero
  config:
    description:
      - The pgBackRest configuration file this module owns; every pgBackRest command of the collection, and
        C(archive_command), read it with C(--config).
    type: path
    default: /etc/pgbackrest/pgbackrest.conf
  pg_path:
    description:
      - The data directory of the cluster (C(pg1-path)). With O(side=database) it must be the C(data_directory) the
        server reports, else nothing is changed.
    type: path
    required: true
  pg_port:
    description:
      - The cluster's port (C(pg1-port)). Unset, O(port).
    type: int
  pg_socket_path:
    description:
      - The cluster's socket directory (C(pg1-socket-path)). Unset, O(login_unix_socket) (side V(database)).
    type: path
  pg_user:
    description:
      - The system user that runs PostgreSQL (and pgBackRest) on the database host.
    type: str
    default: postgres
  pg_host:
    description:
      - With O(side=repository), the database host (C(pg1-host)) pgBackRest reaches over ssh.
    type: str
  pg_host_user:
    description:
      - With O(side=repository), the user pgBackRest logs in as on O(pg_host) (C(pg1-host-user)).
    type: str
    default: postgres
  pg_host_config:
    description:
      - With O(side=repository), the configuration file on O(pg_host) (C(pg1-host-config)). Unset, O(config).
    type: path
  repo_path:
    description:
      - The posix repository (C(repo1-path)). Required when the repository is on this host.
    type: path
  repo_user:
    description:
      - With O(side=repository), the system user that owns the repository and runs pgBackRest on this host.
    type: str
    default: pgbackrest
  repo_host:
    description:
      - With O(side=database), the repository host (C(repo1-host)), when the repository is not on this host.
    type: str
  repo_host_user:
    description:
      - With O(repo_host), the user pgBackRest logs in as there (C(repo1-host-user)).
    type: str
    default: pgbackrest
  repo_host_config:
    description:
      - With O(repo_host), the configuration file on it (C(repo1-host-config)). Unset, O(config).
    type: path
  cipher_type:
    description:
      - Encryption of the repository (C(repo1-cipher-type)); written where the repository is.
    type: str
    choices: [none, aes-256-cbc]
    default: none
  cipher_pass:
    description:
      - The repository's cipher pass (C(repo1-cipher-pass)), required with O(cipher_type=aes-256-cbc) where the
        repository is. Written only into O(config).
    type: str
  retention_full:
    description:
      - Full backups kept (C(repo1-retention-full)); pgBackRest expires older ones, with the diff and incr backups and
        the WAL that depend on them, after each backup.
    type: int
    default: 2
  retention_diff:
    description:
      - Differential backups kept (C(repo1-retention-diff)). Unset, pgBackRest's default.
    type: int
  process_max:
    description:
      - Processes pgBackRest uses for compression and transfer (C(process-max)).
    type: int
    default: 1
  compress_type:
    description:
      - Compression of the repository's files (C(compress-type)).
    type: str
    choices: [none, gz, lz4, zst, bz2]
    default: lz4
  archive_timeout:
    description:
      - PostgreSQL's C(archive_timeout) in seconds, the bound of the archive's lag (the RPO) when the database writes
        little. V(0) turns it off.
    type: int
    default: 60
  restart_allowed:
    description:
      - Restart PostgreSQL when a changed setting needs it. V(false) reports RV(restart_required) instead.
    type: bool
    default: false
  pg_service:
    description:
      - The systemd unit of the cluster (V(postgresql@15-main)), restarted with C(systemctl). Unset, C(pg_ctl restart).
    type: str
  check:
    description:
      - Run C(pgbackrest check) (it switches to a new WAL file and waits until it is archived, at most
        O(check_timeout) seconds); a failure fails V(state=present) and is reported in RV(health) with V(state=health).
    type: bool
    default: true
  check_timeout:
    description:
      - Seconds C(pgbackrest check) waits for the WAL it switched to reach the repository.
    type: int
    default: 60
  log_path:
    description:
      - pgBackRest's log directory (C(log-path)). Unset, pgBackRest's default (C(/var/log/pgbackrest)).
    type: path
  lock_path:
    description:
      - pgBackRest's lock directory (C(lock-path)). Unset, pgBackRest's default (C(/tmp/pgbackrest)).
    type: path
  pg_bindir:
    description:
      - Directory of C(pg_ctl) for the restart. Unset, C(/usr/lib/postgresql/<PG_VERSION>/bin).
    type: path
'''

EXAMPLES = r'''
- name: Set up pgBackRest with a repository on the database host, encrypted
  omero.backup.db_archive:
    stanza: omero
    pg_path: /var/lib/postgresql/15/main
    pg_socket_path: /var/run/postgresql
    repo_path: /backup/pgbackrest
    cipher_type: aes-256-cbc
    cipher_pass: "{{ vault_pgbackrest_cipher_pass }}"
    retention_full: 2
    archive_timeout: 60
    restart_allowed: true
    pg_service: postgresql@15-main
  register: omero_archive

- name: Read the health of the backups and of WAL archiving
  omero.backup.db_archive:
    state: health
    stanza: omero
    pg_path: /var/lib/postgresql/15/main
  register: omero_archive_health
'''

RETURN = r'''
side:
  description: The side set up.
  returned: with O(state=present)
  type: str
stanza:
  description: The stanza.
  returned: with O(state=present)
  type: str
version:
  description: pgBackRest's version.
  returned: with O(state=present)
  type: str
  sample: "2.45"
config:
  description: The configuration file.
  returned: with O(state=present)
  type: str
config_changed:
  description: Whether the configuration file was written (would be, in check mode).
  returned: with O(state=present)
  type: bool
config_changes:
  description: What differed in the configuration file (V(missing), V(content), mode, owner).
  returned: when the configuration file was written
  type: list
  elements: str
repo_created:
  description: Whether O(repo_path) was made.
  returned: when it was missing
  type: bool
archive_command:
  description: The C(archive_command) this module sets.
  returned: with O(state=present)
  type: str
settings:
  description: The PostgreSQL settings this module sets, by name.
  returned: with O(side=database) and O(state=present)
  type: dict
settings_changed:
  description: The settings changed by C(ALTER SYSTEM) (would be, in check mode).
  returned: with O(state=present)
  type: list
  elements: str
restart_required:
  description: Whether PostgreSQL must still restart for a changed setting (archiving does not work until then).
  returned: with O(state=present)
  type: bool
restart_settings:
  description: The settings that wait for a restart.
  returned: with O(side=database) and O(state=present)
  type: list
  elements: str
restarted:
  description: Whether PostgreSQL was restarted (would be, in check mode).
  returned: with O(state=present)
  type: bool
stanza_created:
  description: Whether the stanza was created (would be, in check mode; V(null) when check mode cannot know).
  returned: with O(state=present)
  type: bool
check_ok:
  description: Result of C(pgbackrest check); V(null) when it did not run.
  returned: with O(state=present)
  type: bool
check_error:
  description: Why C(pgbackrest check) failed.
  returned: with O(state=present)
  type: str
commands:
  description: The pgBackRest and restart commands run (no secret is ever on them).
  returned: always
  type: list
  elements: list
verify:
  description: What C(pgbackrest verify) found.
  returned: with O(state=verify)
  type: dict
  contains:
    ok:
      description: Whether every file checked is valid.
      type: bool
    status:
      description: pgBackRest's overall status (V(ok), V(error)).
      type: str
    damaged:
      description: Repository paths of the damaged files (relative to the stanza's backup or archive directory).
      type: list
      elements: str
    backups:
      description: The status of each backup by label (V(valid), V(invalid)).
      type: dict
    archives:
      description: Per archive id, WAL segments checked and valid.
      type: dict
    problems:
      description: pgBackRest's lines naming each damaged file.
      type: list
      elements: str
    seconds:
      description: Seconds the verify took.
      type: float
health:
  description: The health of the stanza's backups and of WAL archiving. Ages are seconds, times ISO 8601 UTC.
  returned: with O(state=health)
  type: dict
  contains:
    stanza_status:
      description: pgBackRest's status code of the stanza (0 ok, 2 no valid backups).
      type: int
    repo_error:
      description: Why pgBackRest could not read the repository (the store is down); PostgreSQL's facts are still given.
      type: str
    checked_at_epoch:
      description: When the facts were read.
      type: float
    backups:
      description: Backups in the repository.
      type: int
    backup_running:
      description: Whether a backup holds the stanza's lock.
      type: bool
    last_full_age_seconds:
      description: Age of the end of the newest full backup (also C(last_diff_*), C(last_incr_*); C(*_time), C(*_label)).
      type: float
    wal_archive_age_seconds:
      description: Age of the newest WAL segment in the repository (pgBackRest's view).
      type: float
    archived_until:
      description: Time up to which WAL is in the repository (the latest point a restore reaches).
      type: str
    pg_wal_archive_age_seconds:
      description: Age of C(pg_stat_archiver.last_archived_time) (PostgreSQL's view; side V(database) only).
      type: float
    archive_failed_count:
      description: C(pg_stat_archiver.failed_count) since the statistics were reset (side V(database) only).
      type: int
    archive_failing:
      description: Whether the last archive attempt failed (side V(database) only).
      type: bool
    repo_size_bytes:
      description: Bytes the stanza's backups and WAL take in the repository.
      type: int
    check_ok:
      description: Result of C(pgbackrest check); V(null) when it did not run.
      type: bool
    check_error:
      description: Why the check failed.
      type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.base.runner import module_runner
from ansible_collections.omero.backup.plugins.module_utils.db_archive import archive_argument_spec, run
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import PostgresError


def main():
    module = AnsibleModule(argument_spec=archive_argument_spec(), supports_check_mode=True)
    check_params(module)
    run_step(module, run, module.params, module_runner(module), check_mode=module.check_mode, errors=(PostgresError,))


if __name__ == '__main__':
    main()
