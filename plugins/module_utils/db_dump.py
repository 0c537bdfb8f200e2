# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_dump of the OMERO database that is either complete and verified or not there at all.

The dump is written under a temporary name (``.omero-backup-tmp.``), read back in
full with ``pg_restore -f /dev/null`` (``--list`` reads only the table of contents
and passes truncated archives), checked against a size floor, then published by
rename. Its manifest is written before the rename with ``complete: false`` and
rewritten with ``complete: true`` only after it, so a crash at any point leaves
either nothing that looks like a dump or a dump explicitly marked incomplete.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import hashlib
import os
import re
import shutil
import tempfile
import time

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.base.atomic import TEMP_PREFIX, apply_owner, ensure_private_dir, fsync_dir, publish, temp_sibling
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.runner import file_timestamp, iso_time, sha256_file, utc_now
from ansible_collections.omero.backup.plugins.module_utils.base.space import free_bytes
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.locking import AlreadyRunning, ExclusiveLock
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import ManifestError, manifest_path_for, read_manifest, write_manifest
from ansible_collections.omero.backup.plugins.module_utils.base.output import tail

SUFFIXES = {'custom': '.pg_dump', 'directory': '.pg_dump.d'}
ROLES_SUFFIX = '.roles.sql'
STAMP_FORMAT = '%Y-%m-%dT%H%M%SZ'
_DUMP_NAME = re.compile(r'^(?P<db>.+)\.(?P<stamp>\d{4}-\d\d-\d\dT\d{6}Z)\.(?P<kind>pg_dump|pg_dump\.d)$')
KIND_FORMATS = {'pg_dump': 'custom', 'pg_dump.d': 'directory'}
LOCK_PURPOSE = 'db_dump'
# psycopg2 errors past connect() (a role without rights, a dropped table): reported, not a traceback.
DATABASE_ERRORS = (postgres.psycopg2.Error,) if postgres.HAS_PSYCOPG2 else ()


class DbDumpError(OmeroBackupError):
    """A dump problem explained for the operator."""


def tool_path(params, name):
    """A PostgreSQL client tool, from O(pg_bindir) when given (several major versions installed)."""
    bindir = params.get('pg_bindir')
    return os.path.join(bindir, name) if bindir else name


def scrub(text, params):
    """Tool output as it may be shown: without the password, trimmed to what explains the failure."""
    text = (text or '').strip()
    for key in ('login_password', 'owner_password'):
        secret = params.get(key)
        if secret:
            text = text.replace(secret, '********')
    return tail(text)


def dump_name(db, stamp, fmt):
    return '%s.%s%s' % (db, stamp, SUFFIXES[fmt])


def roles_name(db, stamp):
    return '%s.%s%s' % (db, stamp, ROLES_SUFFIX)


def parse_dump_name(name):
    """(db, stamp, format) of a dump's base name, or None for anything else."""
    match = _DUMP_NAME.match(name)
    if not match:
        return None
    return match.group('db'), match.group('stamp'), KIND_FORMATS[match.group('kind')]


def compress_argument(compress, client_major):
    """The ``-Z`` value for pg_dump, or None to keep pg_dump's default.

    Accepts ``none``, a gzip level ``0``-``9``, ``gzip[:N]``, and on 16+ clients
    ``zstd[:N]`` and ``lz4[:N]``. PostgreSQL 15 takes only a level number.
    """
    if compress in (None, ''):
        return None
    text = str(compress).strip().lower()
    method, _sep, level = text.partition(':')
    if method.isdigit() and not level:
        method, level = 'gzip', method
    if method not in ('none', 'gzip', 'zstd', 'lz4'):
        raise DbDumpError('compress=%r: use none, a gzip level 0-9, gzip:N, or (client 16+) zstd[:N] / lz4[:N]' % (compress,))
    if level and not level.isdigit():
        raise DbDumpError('compress=%r: the level after ":" must be a number' % (compress,))
    if method == 'gzip' and level and not 0 <= int(level) <= 9:
        raise DbDumpError('compress=%r: gzip levels are 0-9' % (compress,))
    if method in ('zstd', 'lz4') and client_major < 16:
        raise DbDumpError('compress=%s needs a PostgreSQL 16 or newer pg_dump; this client is %d, which supports only gzip '
                          'levels 0-9 (or none)' % (text, client_major))
    if client_major < 16:
        if method == 'none':
            return '0'
        return level or '6'
    if method == 'none':
        return 'none'
    return method + (':' + level if level else '')


def tree_files(root):
    """Relative paths of every file below ``root``, sorted."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def tree_digest(entries):
    """One sha256 for a directory-format dump: of its ``sha256  relpath`` listing (sha256sum's format)."""
    listing = ''.join('%s  %s\n' % (entry['sha256'], entry['path']) for entry in sorted(entries, key=lambda e: e['path']))
    return hashlib.sha256(listing.encode('utf-8')).hexdigest()


def artefact_size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, rel)) for rel in tree_files(path))
    return os.path.getsize(path)


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def read_through(runner, params, path, fmt):
    """Read every member of an archive (``pg_restore -f /dev/null``); raises DbDumpError when it is damaged."""
    argv = [tool_path(params, 'pg_restore'), '-F', 'd' if fmt == 'directory' else 'c', '-f', os.devnull, path]
    rc, out, err = runner(argv, env={'LC_MESSAGES': 'C'})
    if rc != 0:
        raise DbDumpError('the dump failed its read-through (%s): %s' % (' '.join(argv), scrub(err or out, params) or 'rc=%d' % rc))


def list_dumps(dest, db=None):
    """Dumps in ``dest`` (of ``db`` when given), newest first: dicts with name, path, stamp, format, manifest, complete."""
    found = []
    try:
        names = os.listdir(dest)
    except OSError:
        return found
    for name in names:
        parsed = parse_dump_name(name)
        if not parsed or (db is not None and parsed[0] != db):
            continue
        path = os.path.join(dest, name)
        manifest_path = manifest_path_for(path)
        record = None
        if os.path.exists(manifest_path):
            try:
                record = read_manifest(manifest_path)
            except ManifestError:
                record = None
        found.append({'name': name, 'path': path, 'db': parsed[0], 'stamp': parsed[1], 'format': parsed[2],
                      'manifest': manifest_path, 'record': record,
                      'complete': bool(record and record.get('complete') is True)})
    found.sort(key=lambda item: (item['stamp'], item['name']), reverse=True)
    return found


def stamp_epoch(stamp):
    return calendar.timegm(time.strptime(stamp, STAMP_FORMAT))


def dump_epoch(item):
    """When a dump finished: its manifest's ``finished_epoch``, else the time stamp in its name."""
    record = item.get('record') or {}
    if isinstance(record.get('finished_epoch'), (int, float)):
        return float(record['finished_epoch'])
    return stamp_epoch(item['stamp'])


def plan_retention(dumps, min_keep, keep=None, max_age=None, now=None):
    """Which dumps to remove: (complete ones beyond ``keep`` / older than ``max_age``, incomplete leftovers).

    The ``min_keep`` newest complete dumps are always kept (at least one), so the
    last complete dump is never removed. Incomplete dumps are leftovers only when a
    complete dump newer than them exists.
    """
    now = time.time() if now is None else now
    min_keep = max(1, int(min_keep or 1))
    complete = [item for item in dumps if item['complete']]
    complete.sort(key=lambda item: (item['stamp'], item['name']), reverse=True)
    drop_complete = []
    for index, item in enumerate(complete):
        if index < min_keep:
            continue
        too_many = keep is not None and index >= keep
        too_old = max_age is not None and now - dump_epoch(item) > max_age
        if too_many or too_old:
            drop_complete.append(item)
    drop_incomplete = []
    if complete:
        newest = complete[0]['stamp']
        drop_incomplete = [item for item in dumps if not item['complete'] and item['stamp'] < newest]
    return drop_complete, drop_incomplete


def related_paths(item):
    """The dump, its manifest and its roles file, manifest first: removing in this order never leaves
    a dump that looks complete without its files."""
    base = item['path'][:-len(SUFFIXES[item['format']])]
    return [item['manifest'], item['path'], base + ROLES_SUFFIX]


def temp_leftovers(dest, db):
    prefix = TEMP_PREFIX + db + '.'
    leftovers = []
    try:
        names = os.listdir(dest)
    except OSError:
        return leftovers
    for name in names:
        if name.startswith(prefix) and ('.pg_dump' in name or ROLES_SUFFIX in name):
            leftovers.append(os.path.join(dest, name))
    return sorted(leftovers)


def prune(dest, db, params, check_mode):
    """Apply retention; returns the removed (or, in check mode, removable) paths."""
    max_age = parse_duration(params.get('max_age')) if params.get('max_age') else None
    drop_complete, drop_incomplete = plan_retention(list_dumps(dest, db), params.get('min_keep'), params.get('keep'), max_age)
    removed = []
    for item in drop_complete + drop_incomplete:
        for path in related_paths(item):
            if os.path.lexists(path):
                removed.append(path)
                if not check_mode:
                    remove_path(path)
    # Under the lock no other dump of this destination is running, so temporaries are dead runs' leftovers.
    for path in temp_leftovers(dest, db):
        removed.append(path)
        if not check_mode:
            remove_path(path)
    if removed and not check_mode:
        fsync_dir(dest)
    return removed


def validate(params):
    fmt = params.get('format') or 'custom'
    jobs = 1 if params.get('jobs') is None else params['jobs']
    if jobs < 1:
        raise DbDumpError('jobs must be 1 or more, got %d' % jobs)
    if jobs > 1 and fmt != 'directory':
        raise DbDumpError('jobs=%d needs format=directory: pg_dump writes the custom format with one process' % jobs)
    if (params.get('min_keep') or 0) < 1:
        raise DbDumpError('min_keep must be 1 or more: the newest complete dump is never removed')
    if params.get('keep') is not None and params['keep'] < params['min_keep']:
        raise DbDumpError('keep (%d) is smaller than min_keep (%d)' % (params['keep'], params['min_keep']))
    for key in ('max_age', 'skip_if_newer_than'):
        if params.get(key):
            parse_duration(params[key])
    if (params.get('min_size') or 0) < 0:
        raise DbDumpError('min_size must be 0 or more bytes')
    if not params.get('db'):
        raise DbDumpError('db must name the database to dump')
    if not params.get('dest') or not os.path.isabs(params['dest']):
        raise DbDumpError('dest must be an absolute path, got %r' % (params.get('dest'),))


def client_facts(params, runner):
    """(client major version, its text, the -Z value): checked before anything is written."""
    client_major, _minor, client_text = postgres.client_version(runner, tool_path(params, 'pg_dump'))
    return client_major, client_text, compress_argument(params.get('compress'), client_major)


def _database_facts(params, client):
    client_major, client_text, z_value = client
    conn = postgres.connect(params, params['db'])
    try:
        facts = {
            'server_version': postgres.server_version(conn),
            'client_version': client_text,
            'database_bytes': postgres.database_size(conn, params['db']),
            'superuser': bool(postgres.query_one(conn, 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')[0]),
            'owner': postgres.query_one(conn, 'SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()')[0],
        }
        facts['omero'] = postgres.omero_facts(conn)
    except DATABASE_ERRORS as exc:
        raise DbDumpError('cannot read the facts of %s: %s' % (params['db'], scrub(str(exc), params)))
    finally:
        conn.close()
    if client_major < int(facts['server_version'].split('.')[0]):
        raise DbDumpError('pg_dump %s is older than the server (%s): pg_dump refuses to dump a newer server; install the '
                          'matching client or set pg_bindir' % (client_text, facts['server_version']))
    return facts, z_value


def _unused_stamp(dest, db, fmt):
    """A time stamp no dump of this database in ``dest`` uses yet (at most one dump a second)."""
    for _attempt in range(3):
        stamp = file_timestamp()
        if not any(os.path.lexists(os.path.join(dest, name)) for name in
                   (dump_name(db, stamp, 'custom'), dump_name(db, stamp, 'directory'), roles_name(db, stamp))):
            return stamp
        time.sleep(1.05)
    raise DbDumpError('cannot find an unused dump name in %s' % dest)


def _dump_roles(runner, params, env, tmp_path, superuser):
    argv = [tool_path(params, 'pg_dumpall'), '--roles-only', '--no-password', '-f', tmp_path]
    note = None
    if not superuser:
        # pg_authid (password hashes) is superuser-only; pg_roles is readable by everyone.
        argv.insert(2, '--no-role-passwords')
        note = ('%s is not a superuser: the roles were saved without their passwords (pg_dumpall --no-role-passwords); '
                'a restore sets the owner password from owner_password' % (params.get('login_user') or 'postgres'))
    roles_env = dict(env)
    roles_env.pop('PGDATABASE', None)
    rc, out, err = runner(argv, env=roles_env)
    if rc != 0:
        raise DbDumpError('pg_dumpall --roles-only failed: %s' % (scrub(err or out, params) or 'rc=%d' % rc))
    return note


def dump(params, runner, check_mode=False):
    """Run one db_dump; returns the module result (without ``failed``)."""
    validate(params)
    dest, db, fmt = params['dest'], params['db'], params.get('format') or 'custom'
    result = {'changed': False, 'skipped_dump': False, 'path': None, 'manifest': None, 'globals_path': None, 'pruned': [],
              'format': fmt, 'warnings': []}

    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise DbDumpError('dest %s exists and is not a directory' % dest)
    missing_dest = not os.path.isdir(dest)
    if missing_dest and not os.path.isdir(os.path.dirname(dest.rstrip('/')) or '/'):
        raise DbDumpError('the parent of dest %s does not exist (an unmounted backup volume?); create it first' % dest)
    client = client_facts(params, runner)
    if missing_dest:
        if check_mode:
            return _check_mode_report(params, client, result, created_dest=True)
        ensure_private_dir(dest, 0o700, params.get('owner'), params.get('group'))
        result['dest_created'] = True

    lock = None
    if not check_mode:  # check mode leaves even the lock file alone
        try:
            lock = ExclusiveLock(dest, LOCK_PURPOSE).acquire()
        except AlreadyRunning as exc:
            raise DbDumpError('%s; not starting a second dump of %s into the same destination' % (exc, db))
    try:
        newest = [item for item in list_dumps(dest, db) if item['complete']]
        if params.get('skip_if_newer_than') and newest:
            age = time.time() - dump_epoch(newest[0])
            if age <= parse_duration(params['skip_if_newer_than']):
                record = newest[0]['record']
                globals_path = os.path.join(dest, record['globals_path']) if record.get('globals_path') else None
                result.update(skipped_dump=True, path=newest[0]['path'], manifest=newest[0]['manifest'],
                              globals_path=globals_path, size=record.get('size'), sha256=record.get('sha256'),
                              duration=record.get('duration'),
                              msg='a complete dump %d s old exists (skip_if_newer_than=%s): %s'
                              % (age, params['skip_if_newer_than'], newest[0]['name']))
                return result
        if check_mode:
            return _check_mode_report(params, client, result, created_dest=False)
        published = _dump_locked(params, runner, client, result)
        result.update(published)
        result['changed'] = True
        result['pruned'] = prune(dest, db, params, check_mode=False)
        return result
    finally:
        if lock is not None:
            lock.release()


def _check_mode_report(params, client, result, created_dest):
    dest, db, fmt = params['dest'], params['db'], params.get('format') or 'custom'
    facts, z_value = _database_facts(params, client)
    free = free_bytes(dest)
    stamp = file_timestamp()
    result.update(changed=True, path=os.path.join(dest, dump_name(db, stamp, fmt)),
                  manifest=manifest_path_for(os.path.join(dest, dump_name(db, stamp, fmt))),
                  globals_path=os.path.join(dest, roles_name(db, stamp)) if params.get('globals') else None,
                  versions={'server': facts['server_version'], 'client': facts['client_version']},
                  omero=facts['omero'], database_bytes=facts['database_bytes'], free_bytes=free,
                  msg='would dump %s to %s' % (db, os.path.join(dest, dump_name(db, stamp, fmt))))
    if created_dest:
        result['dest_created'] = True
    if free < facts['database_bytes']:
        result['warnings'].append('only %d bytes free at %s for a database of %d bytes; a compressed dump is usually much '
                                  'smaller, but check' % (free, dest, facts['database_bytes']))
    if os.path.isdir(dest):
        result['pruned'] = prune(dest, db, dict(params), check_mode=True)
    return result


def _dump_locked(params, runner, client, result):
    dest, db, fmt = params['dest'], params['db'], params.get('format') or 'custom'
    owner, group = params.get('owner'), params.get('group')
    started = utc_now()
    clock = time.time()
    facts, z_value = _database_facts(params, client)
    if facts['database_bytes'] > free_bytes(dest):
        result['warnings'].append('less free space at %s than the database size (%d bytes); relying on compression'
                                  % (dest, facts['database_bytes']))
    stamp = _unused_stamp(dest, db, fmt)
    final = os.path.join(dest, dump_name(db, stamp, fmt))
    final_roles = os.path.join(dest, roles_name(db, stamp))
    manifest_path = manifest_path_for(final)
    env = postgres.libpq_env(params, dbname=db)
    created = []
    old_umask = os.umask(0o077)  # pg_dump's own files (directory format) must never be readable by others
    try:
        if fmt == 'directory':
            tmp = tempfile.mkdtemp(prefix=TEMP_PREFIX + os.path.basename(final) + '.', dir=dest)
        else:
            tmp = temp_sibling(final)
        created.append(tmp)
        argv = [tool_path(params, 'pg_dump'), '--no-password', '-F', 'd' if fmt == 'directory' else 'c', '-f', tmp]
        if (params.get('jobs') or 1) > 1:
            argv += ['-j', str(params['jobs'])]
        if z_value is not None:
            argv += ['-Z', z_value]
        rc, out, err = runner(argv, env=env)
        dump_seconds = time.time() - clock
        if rc != 0:
            raise DbDumpError('pg_dump of %s failed (rc %d): %s' % (postgres.describe_target(params, db), rc,
                                                                    scrub(err or out, params) or 'no message'))
        roles_note = None
        tmp_roles = None
        if params.get('globals'):
            tmp_roles = temp_sibling(final_roles)
            created.append(tmp_roles)
            roles_note = _dump_roles(runner, params, env, tmp_roles, facts['superuser'])
            if roles_note:
                result['warnings'].append(roles_note)

        verify_clock = time.time()
        read_through(runner, params, tmp, fmt)
        verify_seconds = time.time() - verify_clock

        size = artefact_size(tmp)
        if size < (params.get('min_size') or 0):
            raise DbDumpError('the dump of %s is %d bytes, below min_size (%d): refusing to keep it as a backup'
                              % (db, size, params['min_size']))

        if fmt == 'directory':
            os.chmod(tmp, 0o700)
            entries = []
            for rel in tree_files(tmp):
                full = os.path.join(tmp, rel)
                os.chmod(full, 0o600)
                apply_owner(full, owner, group)
                entries.append({'path': os.path.join(os.path.basename(final), rel), 'size': os.path.getsize(full),
                                'sha256': sha256_file(full)})
            digest = tree_digest([dict(e, path=e['path'].split('/', 1)[1]) for e in entries])
        else:
            os.chmod(tmp, 0o600)
            digest = sha256_file(tmp)
            entries = [{'path': os.path.basename(final), 'size': size, 'sha256': digest}]
        apply_owner(tmp, owner, group)
        if tmp_roles:
            os.chmod(tmp_roles, 0o600)
            apply_owner(tmp_roles, owner, group)
            entries.append({'path': os.path.basename(final_roles), 'size': os.path.getsize(tmp_roles),
                            'sha256': sha256_file(tmp_roles)})

        finished = utc_now()
        record = {
            'kind': 'omero.backup.db_dump',
            'database': db,
            'format': fmt,
            'jobs': params.get('jobs') or 1,
            'compress': z_value,
            'path': os.path.basename(final),
            'globals_path': os.path.basename(final_roles) if tmp_roles else None,
            'globals_with_passwords': bool(tmp_roles) and roles_note is None,
            'sha256': digest,
            'size': size,
            'files': entries,
            'database_owner': facts['owner'],
            'database_bytes': facts['database_bytes'],
            'postgres': {'server_version': facts['server_version'], 'client_version': facts['client_version']},
            'omero': facts['omero'],
            'server_stopped': bool(params.get('server_stopped')),
            'started': iso_time(started),
            'finished': iso_time(finished),
            'finished_epoch': time.time(),
            'dump_seconds': round(dump_seconds, 3),
            'verify_seconds': round(verify_seconds, 3),
            'duration': round(time.time() - clock, 3),
            'verified_by': 'pg_restore -f /dev/null (full read-through)',
        }
        # Publish order: manifest (incomplete), roles, dump, manifest (complete). Killed anywhere,
        # the dump is either absent or next to a manifest that says complete: false.
        write_manifest(manifest_path, record, complete=False, owner=owner, group=group)
        created.append(manifest_path)
        if tmp_roles:
            publish(tmp_roles, final_roles)
            created[created.index(tmp_roles)] = final_roles
        publish(tmp, final)
        created[created.index(tmp)] = final
        write_manifest(manifest_path, record, complete=True, owner=owner, group=group)
        created = []
    except (OSError, IOError) as exc:
        raise DbDumpError('writing the dump of %s in %s failed: %s (nothing was published; older dumps are untouched)'
                          % (db, dest, exc.strerror or exc))
    finally:
        os.umask(old_umask)
        for path in reversed(created):
            try:
                remove_path(path)
            except OSError:
                pass
    return {'path': final, 'manifest': manifest_path, 'globals_path': final_roles if params.get('globals') else None,
            'size': record['size'], 'sha256': digest, 'duration': record['duration'], 'dump_seconds': record['dump_seconds'],
            'verify_seconds': record['verify_seconds'],
            'versions': {'server': facts['server_version'], 'client': facts['client_version']},
            'omero': facts['omero'], 'database_bytes': facts['database_bytes']}
