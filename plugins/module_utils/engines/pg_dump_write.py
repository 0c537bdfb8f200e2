# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg_dump engine's backup: one dump that is either complete and verified or not there at all.

The dump is written under a temporary name (``.omero-backup-tmp.``), read back in full with
``pg_restore -f /dev/null`` (``--list`` reads only the table of contents and passes truncated archives), checked
against a size floor, then published by rename. Its manifest is written before the rename with ``complete: false``
and rewritten with ``complete: true`` only after it, so a crash at any point leaves either nothing that looks like
a dump or a dump explicitly marked incomplete.

``options`` is the db_dump step's options object: ``connection`` (the settings tools/postgres reads), ``db``,
``dest``, ``format``, ``jobs``, ``globals``, ``min_size``, ``owner``, ``group``, ``server_stopped``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import tempfile
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import TEMP_PREFIX, apply_owner, publish, temp_sibling
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import manifest_path_for, write_manifest
from ansible_collections.omero.backup.plugins.module_utils.base.runner import file_timestamp, iso_time, sha256_file, utc_now
from ansible_collections.omero.backup.plugins.module_utils.base.space import free_bytes
from ansible_collections.omero.backup.plugins.module_utils.dumps import (artefact_size, dump_name, remove_path, roles_name, tree_digest,
                                                                         tree_files)
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_files import DbDumpError, compress_argument, read_through
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import DATABASE_ERRORS, scrub, tool_path


def client_facts(pg, compress, runner):
    """(client major version, its text, the -Z value): checked before anything is written."""
    client_major, _minor, client_text = postgres.client_version(runner, tool_path(pg, 'pg_dump'))
    return client_major, client_text, compress_argument(compress, client_major)


def database_facts(options, client):
    client_major, client_text, z_value = client
    conn = postgres.connect(options.connection, options.db)
    try:
        facts = {
            'server_version': postgres.server_version(conn),
            'client_version': client_text,
            'database_bytes': postgres.database_size(conn, options.db),
            'superuser': bool(postgres.query_one(conn, 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')[0]),
            'owner': postgres.query_one(conn, 'SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()')[0],
        }
        facts['omero'] = postgres.omero_facts(conn)
    except DATABASE_ERRORS as exc:
        raise DbDumpError('cannot read the facts of %s: %s' % (options.db, scrub(str(exc), options.connection)))
    finally:
        conn.close()
    if client_major < int(facts['server_version'].split('.')[0]):
        raise DbDumpError('pg_dump %s is older than the server (%s): pg_dump refuses to dump a newer server; install the '
                          'matching client or set pg_bindir' % (client_text, facts['server_version']))
    return facts, z_value


def planned(options, client):
    """What check mode reports: the dump's would-be names, the facts, free space (fields, warnings)."""
    dest, db = options.dest, options.db
    facts, z_value = database_facts(options, client)
    free = free_bytes(dest)
    stamp = file_timestamp()
    path = os.path.join(dest, dump_name(db, stamp, options.format))
    fields = dict(path=path, manifest=manifest_path_for(path),
                  globals_path=os.path.join(dest, roles_name(db, stamp)) if options.globals else None,
                  versions={'server': facts['server_version'], 'client': facts['client_version']},
                  omero=facts['omero'], database_bytes=facts['database_bytes'], free_bytes=free,
                  msg='would dump %s to %s' % (db, path))
    warnings = []
    if free < facts['database_bytes']:
        warnings.append('only %d bytes free at %s for a database of %d bytes; a compressed dump is usually much '
                        'smaller, but check' % (free, dest, facts['database_bytes']))
    return fields, warnings


def _unused_stamp(dest, db):
    """A time stamp no dump of this database in ``dest`` uses yet (at most one dump a second)."""
    for _attempt in range(3):
        stamp = file_timestamp()
        if not any(os.path.lexists(os.path.join(dest, name)) for name in
                   (dump_name(db, stamp, 'custom'), dump_name(db, stamp, 'directory'), roles_name(db, stamp))):
            return stamp
        time.sleep(1.05)
    raise DbDumpError('cannot find an unused dump name in %s' % dest)


def _dump_roles(runner, pg, env, tmp_path, superuser):
    argv = [tool_path(pg, 'pg_dumpall'), '--roles-only', '--no-password', '-f', tmp_path]
    note = None
    if not superuser:
        # pg_authid (password hashes) is superuser-only; pg_roles is readable by everyone.
        argv.insert(2, '--no-role-passwords')
        note = ('%s is not a superuser: the roles were saved without their passwords (pg_dumpall --no-role-passwords); '
                'a restore sets the owner password from owner_password' % (pg.get('login_user') or 'postgres'))
    roles_env = dict(env)
    roles_env.pop('PGDATABASE', None)
    rc, out, err = runner(argv, env=roles_env)
    if rc != 0:
        raise DbDumpError('pg_dumpall --roles-only failed: %s' % (scrub(err or out, pg) or 'rc=%d' % rc))
    return note


class _Dump(object):
    """One dump on its way: its final names, the temporaries made so far (removed unless published)."""

    def __init__(self, options, runner, client):
        self.options, self.runner, self.client = options, runner, client
        self.clock = time.time()
        self.started = utc_now()
        self.facts, self.z_value = database_facts(options, client)
        stamp = _unused_stamp(options.dest, options.db)
        self.final = os.path.join(options.dest, dump_name(options.db, stamp, options.format))
        self.final_roles = os.path.join(options.dest, roles_name(options.db, stamp))
        self.manifest_path = manifest_path_for(self.final)
        self.created = []
        self.tmp = self.tmp_roles = self.roles_note = None
        self.seconds = {}

    def run_pg_dump(self):
        options = self.options
        if options.format == 'directory':
            self.tmp = tempfile.mkdtemp(prefix=TEMP_PREFIX + os.path.basename(self.final) + '.', dir=options.dest)
        else:
            self.tmp = temp_sibling(self.final)
        self.created.append(self.tmp)
        argv = [tool_path(options.connection, 'pg_dump'), '--no-password', '-F', 'd' if options.format == 'directory' else 'c',
                '-f', self.tmp]
        if options.jobs > 1:
            argv += ['-j', str(options.jobs)]
        if self.z_value is not None:
            argv += ['-Z', self.z_value]
        rc, out, err = self.runner(argv, env=postgres.libpq_env(options.connection, dbname=options.db))
        self.seconds['dump'] = time.time() - self.clock
        if rc != 0:
            raise DbDumpError('pg_dump of %s failed (rc %d): %s' % (postgres.describe_target(options.connection, options.db), rc,
                                                                    scrub(err or out, options.connection) or 'no message'))
        if options.globals:
            self.tmp_roles = temp_sibling(self.final_roles)
            self.created.append(self.tmp_roles)
            self.roles_note = _dump_roles(self.runner, options.connection, postgres.libpq_env(options.connection, dbname=options.db),
                                          self.tmp_roles, self.facts['superuser'])

    def check(self):
        """The full read-through and the size floor: a dump that fails either is never published."""
        verify_clock = time.time()
        read_through(self.runner, self.options.connection, self.tmp, self.options.format)
        self.seconds['verify'] = time.time() - verify_clock
        size = artefact_size(self.tmp)
        if size < self.options.min_size:
            raise DbDumpError('the dump of %s is %d bytes, below min_size (%d): refusing to keep it as a backup'
                              % (self.options.db, size, self.options.min_size))
        return size

    def seal(self, size):
        """Modes 0600/0700, the owner, and the manifest's file list with sha256s; returns (digest, entries)."""
        owner, group = self.options.owner, self.options.group
        if self.options.format == 'directory':
            os.chmod(self.tmp, 0o700)
            entries = []
            for rel in tree_files(self.tmp):
                full = os.path.join(self.tmp, rel)
                os.chmod(full, 0o600)
                apply_owner(full, owner, group)
                entries.append({'path': os.path.join(os.path.basename(self.final), rel), 'size': os.path.getsize(full),
                                'sha256': sha256_file(full)})
            digest = tree_digest([dict(e, path=e['path'].split('/', 1)[1]) for e in entries])
        else:
            os.chmod(self.tmp, 0o600)
            digest = sha256_file(self.tmp)
            entries = [{'path': os.path.basename(self.final), 'size': size, 'sha256': digest}]
        apply_owner(self.tmp, owner, group)
        if self.tmp_roles:
            os.chmod(self.tmp_roles, 0o600)
            apply_owner(self.tmp_roles, owner, group)
            entries.append({'path': os.path.basename(self.final_roles), 'size': os.path.getsize(self.tmp_roles),
                            'sha256': sha256_file(self.tmp_roles)})
        return digest, entries

    def record(self, size, digest, entries):
        options, facts = self.options, self.facts
        return {
            'kind': 'omero.backup.db_dump', 'database': options.db, 'format': options.format, 'jobs': options.jobs,
            'compress': self.z_value, 'path': os.path.basename(self.final),
            'globals_path': os.path.basename(self.final_roles) if self.tmp_roles else None,
            'globals_with_passwords': bool(self.tmp_roles) and self.roles_note is None,
            'sha256': digest, 'size': size, 'files': entries, 'database_owner': facts['owner'],
            'database_bytes': facts['database_bytes'],
            'postgres': {'server_version': facts['server_version'], 'client_version': facts['client_version']},
            'omero': facts['omero'], 'server_stopped': bool(options.server_stopped),
            'started': iso_time(self.started), 'finished': iso_time(utc_now()), 'finished_epoch': time.time(),
            'dump_seconds': round(self.seconds['dump'], 3), 'verify_seconds': round(self.seconds['verify'], 3),
            'duration': round(time.time() - self.clock, 3),
            'verified_by': 'pg_restore -f /dev/null (full read-through)',
        }

    def publish(self, record):
        """Publish order: manifest (incomplete), roles, dump, manifest (complete). Killed anywhere, the dump is
        either absent or next to a manifest that says complete: false."""
        owner, group = self.options.owner, self.options.group
        write_manifest(self.manifest_path, record, complete=False, owner=owner, group=group)
        self.created.append(self.manifest_path)
        if self.tmp_roles:
            publish(self.tmp_roles, self.final_roles)
            self.created[self.created.index(self.tmp_roles)] = self.final_roles
        publish(self.tmp, self.final)
        self.created[self.created.index(self.tmp)] = self.final
        write_manifest(self.manifest_path, record, complete=True, owner=owner, group=group)
        self.created = []

    def remove_unpublished(self):
        for path in reversed(self.created):
            try:
                remove_path(path)
            except OSError:
                pass


def write_dump(options, runner, client):
    """One dump into ``options.dest`` (locked by the caller); returns (result fields, warnings)."""
    work = _Dump(options, runner, client)
    warnings = []
    if work.facts['database_bytes'] > free_bytes(options.dest):
        warnings.append('less free space at %s than the database size (%d bytes); relying on compression'
                        % (options.dest, work.facts['database_bytes']))
    old_umask = os.umask(0o077)  # pg_dump's own files (directory format) must never be readable by others
    try:
        work.run_pg_dump()
        if work.roles_note:
            warnings.append(work.roles_note)
        size = work.check()
        digest, entries = work.seal(size)
        record = work.record(size, digest, entries)
        work.publish(record)
    except (OSError, IOError) as exc:
        raise DbDumpError('writing the dump of %s in %s failed: %s (nothing was published; older dumps are untouched)'
                          % (options.db, options.dest, exc.strerror or exc))
    finally:
        os.umask(old_umask)
        work.remove_unpublished()
    facts = work.facts
    return ({'path': work.final, 'manifest': work.manifest_path,
             'globals_path': work.final_roles if options.globals else None, 'size': record['size'], 'sha256': digest,
             'duration': record['duration'], 'dump_seconds': record['dump_seconds'],
             'verify_seconds': record['verify_seconds'],
             'versions': {'server': facts['server_version'], 'client': facts['client_version']},
             'omero': facts['omero'], 'database_bytes': facts['database_bytes']}, warnings)
