#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: backup_set
short_description: Write and prune the backup-set records of an omero.backup store
version_added: 0.2.0
description:
  - A backup set is one configuration save, one database dump and one binary-repository increment that belong
    together. Its record, C(<store_path>/sets/<set_id>.json), is what a backup writes last and what a restore, a
    drill and a verification read first; C(sets/latest.json) is a copy of the newest one. This module and
    M(omero.backup.backup_set_info) (which reads and lists them) are their only writer and reader; this page documents
    their schema.
  - O(state=present) assembles the record from the facts of each component, validates it and writes it
    atomically (temporary file, fsync, rename, directory fsync; mode 0600), then C(latest.json). Outside check
    mode it refuses to write a set that is not complete. It writes only what differs from the store; a set the
    store already holds complete is left as the run that made it wrote it when no component says it was redone
    (C(changed)), so a re-run that found every part recent writes nothing and reports no change.
  - O(state=pruned) applies retention to the records (not to the dumps or increments they name, which have their
    own retention).
  - "B(The record, format_version 2.) Top level: C(set_id) (the set's name: the UTC time of its binary-repository
    increment without colons, for example C(2026-11-26T083000Z)), C(format_version), C(server_host),
    C(database_host), C(store_host), C(store_path), C(datadir), C(backup_dir), C(dbname), C(consistent) (the server
    was stopped for the copy), C(components) (the components it holds), C(config), C(database), and C(complete),
    always the last key."
  - "C(config): C(path) (the saved C(omero config) file, under C(backup_dir)) and C(sha256) are needed;
    C(omero_version), C(other_sources) (the paths archived), C(other_sources_archive), C(other_sources_sha256)
    may be there. C(database): C(host), C(path) (the dump as the store's increment holds it), C(files) (the dump's
    file names) and C(sha256) are needed; C(manifest), C(size), C(schema_version), C(schema_patch), C(db_uuid),
    C(server_stopped) may be there. C(datadir): C(src) (the data directory), C(store) (C(host:path) of the
    repository) and C(increment_time) are needed; C(increment_epoch), C(files), C(bytes), C(warnings) may be
    there, and C(engine) (C(rdiff-backup) when absent, or C(restic)); a C(restic) set also needs C(snapshot_id) and
    C(repository), and its C(label) (the tag its snapshot carries) is its C(set_id). Each component also says
    C(complete)."
  - "Every sha256 is 64 lowercase hex digits; paths are absolute. A record is complete when it says C(complete:
    true), every component it names has its needed fields and says it is complete, and it is stored under its own
    C(set_id). Records of C(format_version) 1 (written by the roles before this module; no C(components), no
    per-component C(complete), all three components implied) are read with the same field rules."
extends_documentation_fragment:
  - omero.backup.attributes
  - omero.backup.attributes.diff_full
  - omero.backup.durations
attributes:
  check_mode:
    details:
      - O(state=present) and O(state=pruned) say what they would write or remove and change nothing.
  diff_mode:
    details:
      - O(state=present) shows the record before and after (the set's file).
options:
  state:
    description:
      - V(present) writes the record of a set; V(pruned) removes the records retention does not keep.
      - M(omero.backup.backup_set_info) reads one set or lists them.
    type: str
    choices: [present, pruned]
    required: true
  store_path:
    description:
      - The store directory; records live in its C(sets/) directory, which must be a directory (not a symlink)
        owned by root or the module's user and writable by nobody else.
      - O(state=present) creates C(sets/) (mode 0700) when missing; the store directory itself must exist.
    type: path
    required: true
  server_host:
    description:
      - O(state=present); the OMERO.server host that was backed up.
    type: str
  database_host:
    description:
      - O(state=present); the host the database was dumped on.
    type: str
  store_host:
    description:
      - O(state=present); the store host, as the inventory names it.
    type: str
  backup_dir:
    description:
      - O(state=present); the directory on the OMERO.server host whose dumps and configuration the increment
        carries (C(omero_backup_dir)).
    type: path
  dbname:
    description:
      - O(state=present); the OMERO database.
    type: str
  consistent:
    description:
      - O(state=present); OMERO.server was stopped while the database was dumped.
    type: bool
    default: false
  config:
    description:
      - O(state=present); the C(config) component's fields (see the record's schema above), plus C(changed) (this
        run saved it anew).
    type: dict
  database:
    description:
      - O(state=present); the C(database) component's fields, plus C(changed) (this run dumped it anew).
    type: dict
  datadir:
    description:
      - O(state=present); the C(datadir) component's fields, plus C(changed) (this run made the increment).
    type: dict
  other_sources:
    description:
      - O(state=present); the archive of the other sources of the configuration, as C(archive) (its path),
        C(sha256), C(sources) (the paths it holds) and C(changed); recorded in the C(config) component as
        C(other_sources_archive), C(other_sources_sha256) and C(other_sources).
    type: dict
  sources:
    description:
      - O(state=present); the layout's sources (M(omero.backup.layout_info)), recorded as the top-level C(sources)
        list (a record without it is written as before). Each needs C(name), C(kind) (C(datadir), C(managed),
        C(volume), C(certs), C(extra)) and C(path) (absolute), and all but the data dir C(store) (their repository)
        and C(increment_time); C(bytes), C(files), C(link) (a volume's link, relative to the data dir) and C(key)
        may be there. A restore refuses a set whose sources do not fit its host (docs/layout.md).
    type: list
    elements: dict
  keep:
    description:
      - O(state=pruned); how many of the newest complete sets to keep (1 or more). Unset, only the newest complete
        set is kept by count.
      - Incomplete records never count; the newest complete set and the set C(latest.json) names always stay;
        a file the module cannot judge (a symlink, another user's file, a newer format, not JSON) is never removed.
        When the store holds no complete set nothing is removed.
    type: int
  keep_younger_than:
    description:
      - O(state=pruned); also keep every set younger than this duration (the age of its increment).
    type: str
  set_ids:
    description:
      - O(state=pruned); remove only these sets, those whose data an engine's own retention removed (restic
        C(forget)). The rules above still hold; ids the store does not hold are ignored.
    type: list
    elements: str
notes:
  - Pruning removes records only; rdiff-backup's C(keep_increments_for) and db_dump's retention remove the data.
    Keep records at least as long as increments, or a listed set may name an increment that is gone.
  - Run it on the store host (C(delegate_to)), as root or as the user owning the store.
'''

EXAMPLES = r'''
- name: Record the backup set on the store
  omero.backup.backup_set:
    state: present
    store_path: /srv/backup/omero
    server_host: omero.example.org
    database_host: db.example.org
    store_host: backup.example.org
    backup_dir: /OMERO/backup
    dbname: omero
    config: {path: /OMERO/backup/config/omero.config, sha256: "{{ omero_config.sha256 }}", changed: "{{ omero_config is changed }}"}
    database:
      host: db.example.org
      path: /OMERO/backup/database/omero.2026-11-26T083000Z.pg_dump
      files: [omero.2026-11-26T083000Z.pg_dump]
      sha256: "{{ omero_dump.sha256 }}"
      changed: "{{ omero_dump is changed }}"
    datadir:
      src: /OMERO
      store: backup.example.org:/srv/backup/omero/datadir
      increment_time: "{{ omero_increment.increment_time }}"
      changed: "{{ omero_increment is changed }}"
  delegate_to: backup.example.org

- name: Keep 14 sets, and every set of the last 30 days
  omero.backup.backup_set:
    state: pruned
    store_path: /srv/backup/omero
    keep: 14
    keep_younger_than: 30d
  delegate_to: backup.example.org
'''

RETURN = r'''
set_id:
  description:
    - The set written, named after its increment (a set id is 1 to 128 of C([0-9A-Za-z_.-]), not starting with
      C(.) or C(-)).
  returned: when O(state=present)
  type: str
  sample: 2026-11-26T083000Z
path:
  description: The set's record file.
  returned: when O(state=present)
  type: str
  sample: /srv/backup/omero/sets/2026-11-26T083000Z.json
latest_path:
  description: C(sets/latest.json).
  returned: when O(state=present)
  type: str
record:
  description: The record as written, or as the store keeps it when it was not rewritten.
  returned: when O(state=present)
  type: dict
complete:
  description: Whether the set is complete (in check mode a set may lack what a real run fills in).
  returned: when O(state=present)
  type: bool
problems:
  description: Why the set is not complete (empty when it is).
  returned: when O(state=present)
  type: list
  elements: str
written:
  description: The set's record file was (in check mode, would be) written.
  returned: when O(state=present)
  type: bool
latest_written:
  description: C(latest.json) was (in check mode, would be) written.
  returned: when O(state=present)
  type: bool
pruned:
  description: The sets whose records were (in check mode, would be) removed.
  returned: when O(state=pruned)
  type: list
  elements: str
kept:
  description: The sets kept, each with C(set_id) and C(reason).
  returned: when O(state=pruned)
  type: list
  elements: dict
ignored:
  description: Names in C(sets/) that are no set's record (escaped), left alone.
  returned: when O(state=pruned)
  type: list
  elements: str
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.backup_set import REQUIRED_IF, Options, argument_spec, run


def main():
    module = AnsibleModule(argument_spec=argument_spec(), required_if=REQUIRED_IF, supports_check_mode=True)
    check_params(module)
    run_step(module, run, Options.from_params(module.params, argument_spec()), module.check_mode, time.time())


if __name__ == '__main__':
    main()
