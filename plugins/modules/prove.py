#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: prove
short_description: Prove OMERO's files by their checksums, in full or a budget per run
version_added: 0.4.0
description:
  - Reads the files of ManagedRepository and C(Files/) back and compares each with the hash OMERO stored for it
    (C(originalfile.hash), algorithm C(hasher) -> C(checksumalgorithm.value)). Proves what M(omero.backup.verify)
    only samples for presence; see docs/verify.md for what each check proves and what it costs.
  - Works on any tree that is laid out as a data directory, the database being the one it belongs to; the live data
    directory (bit rot), a restored tree (a drill's scratch copy), or a store's snapshot restored into scratch.
  - Every algorithm OMERO has is supported (C(SHA1-160), C(MD5-128), C(Murmur3-32), C(Murmur3-128), C(CRC-32),
    C(Adler-32), C(File-Size-64)); Murmur3 in pure Python unless the C(mmh3) module is installed.
  - With O(state_file), a run proves files in id order from where the last run stopped, within O(max_bytes) and/or
    O(max_time), so a store too big for one night is proven over several; the age of the oldest file not yet
    proven in the current cycle is returned and exported as a metric.
  - Bad news (a file that does not match its hash, a missing file) fails the task with the list in RV(mismatched)
    and RV(missing), and every such file in O(report_file). Files without a hash are counted, never a failure.
extends_documentation_fragment:
  - omero.backup.postgres
  - omero.backup.attributes
  - omero.backup.attributes.diff_none
options:
  db:
    description: Name of the OMERO database the tree belongs to.
    type: str
    default: omero
  datadir:
    description: The data directory to prove (C(Files/) is read from it).
    type: path
    default: /OMERO
  managed_dir:
    description: The managed repository (C(omero.managed.dir)); defaults to C(ManagedRepository) in O(datadir).
    type: path
  state_file:
    description:
      - Where the proof remembers how far it got (mode 0600, written atomically). Without it every run starts at the
        first file.
      - A state file about another database or data directory is replaced by a new proof, with a warning.
    type: path
  restart:
    description: Start a new cycle at the first file, whatever O(state_file) says.
    type: bool
    default: false
  start:
    description:
      - V(resume) starts after the last proven file (the first file without O(state_file)); V(random) at a random
        file, for a sample that differs from run to run (a drill). V(random) cannot be used with O(state_file).
    type: str
    default: resume
    choices: [resume, random]
  max_bytes:
    description: Stop handing out files once this many bytes (by the sizes the database records) were handed out. V(0) is no limit.
    type: int
    default: 0
  max_time:
    description: Stop handing out files after this long (the collection's duration grammar, for example V(6h) or V(90m)).
    type: str
  jobs:
    description: Files hashed at once, 1 to 4 per core; unset is one per core.
    type: int
  report_file:
    description: A JSON report (mode 0600) with the counts and every mismatched, missing, unhashed and dangling file.
    type: path
  metrics_file:
    description: A node_exporter textfile-collector file with the C(omero_backup_proof_*) metrics (mode 0644).
    type: path
  max_listed:
    description: How many files each list of the result holds at most (the report file holds all).
    type: int
    default: 100
  fail_on_problems:
    description: Fail the task when a file is mismatched or missing.
    type: bool
    default: true
notes:
  - In check mode the files are read and compared all the same (that changes nothing), but no state, report or
    metrics file is written.
'''

EXAMPLES = r'''
- name: Prove the live data directory, 6 hours a night, going on where last night stopped
  omero.backup.prove:
    db: omero
    datadir: /OMERO
    state_file: /var/lib/omero-backup/proof.state
    max_time: 6h
    report_file: /var/lib/omero-backup/proof-report.json
    metrics_file: /var/lib/node_exporter/omero_backup_proof.prom
  become: true
  become_user: postgres

- name: Prove a random 1 GB sample of a drill's scratch restore
  omero.backup.prove:
    db: omero_drill
    datadir: /var/lib/omero-backup/drill/OMERO
    start: random
    max_bytes: 1073741824
'''

RETURN = r'''
ok:
  description: V(true) when no file was mismatched or missing.
  returned: always
  type: bool
problems:
  description: The bad news, one sentence per kind.
  returned: always
  type: list
  elements: str
counts:
  description: Files by result in this run (C(proven), C(mismatched), C(missing), C(unhashed), C(dangling)) and C(bytes) read.
  returned: always
  type: dict
  sample: {"proven": 120, "mismatched": 0, "missing": 0, "unhashed": 2, "dangling": 1, "bytes": 73400320}
by_algorithm:
  description: The same counts per algorithm (C(none) for files without a hash).
  returned: always
  type: dict
  sample: {"SHA1-160": {"proven": 118, "mismatched": 0, "missing": 0, "unhashed": 0, "dangling": 0, "bytes": 73300000}}
files:
  description: Files checked in this run.
  returned: always
  type: int
bytes:
  description: Bytes read and hashed in this run.
  returned: always
  type: int
duration:
  description: Seconds the run took.
  returned: always
  type: float
rate_bytes_per_second:
  description: RV(bytes) over RV(duration).
  returned: always
  type: int
mismatched:
  description: Files whose content does not match their hash (or, unhashed, their recorded size), at most O(max_listed).
  returned: always
  type: list
  elements: dict
  sample: [{"id": 1234, "path": "Files/Dir-001/1234", "algorithm": "SHA1-160", "expected": "da39...", "actual": "a999...",
            "size_expected": 5120, "size_actual": 5120}]
missing:
  description: Files the database lists that are not there (id, path), at most O(max_listed).
  returned: always
  type: list
  elements: dict
unhashed:
  description: Files without a hash in the database, at most O(max_listed).
  returned: always
  type: list
  elements: dict
dangling:
  description: Links (in-place imports) whose target is missing, at most O(max_listed).
  returned: always
  type: list
  elements: dict
first_id:
  description: Id of the first file of this run.
  returned: always
  type: int
last_id:
  description: Id of the last file of this run; the next run goes on after it.
  returned: always
  type: int
stopped_by:
  description: V(bytes) or V(time) when the budget stopped the run, else null (every file after the start was checked).
  returned: always
  type: str
cycle_complete:
  description: Whether this run reached the last file of a cycle (the next run starts again at the first).
  returned: always
  type: bool
cursor:
  description: The id up to which the current cycle has proven every file (0 after a completed cycle).
  returned: always
  type: int
cycle:
  description: Number of the current cycle (1 until the first full pass completes).
  returned: always
  type: int
cycle_counts:
  description: Counts of the whole current cycle (of the cycle just completed when RV(cycle_complete)).
  returned: always
  type: dict
oldest_unproven_age:
  description: Seconds since the oldest file not yet proven in this cycle was last proven (null without O(state_file)).
  returned: always
  type: float
db_uuid:
  description: The database's C(omero.db.uuid).
  returned: always
  type: str
datadir:
  description: The data directory proven.
  returned: always
  type: str
managed_dir:
  description: The managed repository proven.
  returned: always
  type: str
managed_repo_uuid:
  description: The uuid of the ManagedRepository row (files of other repositories are not in the data directory).
  returned: always
  type: str
jobs:
  description: Files hashed at once.
  returned: always
  type: int
start:
  description: O(start) as used.
  returned: always
  type: str
state_file:
  description: O(state_file).
  returned: always
  type: str
report_file:
  description: O(report_file), when given.
  returned: when O(report_file) is given
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omero.backup.plugins.module_utils.base.params import check_params
from ansible_collections.omero.backup.plugins.module_utils.glue import run_step
from ansible_collections.omero.backup.plugins.module_utils.proof.run import argument_spec, run


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_params(module, jobs=('jobs',))
    run_step(module, run, module.params, check_mode=module.check_mode)


if __name__ == '__main__':
    main()
