# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The omero backend: the real ``omero admin cleanse``, its output parsed into the same result."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import os
import re
import shutil
import tempfile
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape as escape_name
from ansible_collections.omero.backup.plugins.module_utils.cleanse.database import database_facts
from ansible_collections.omero.backup.plugins.module_utils.cleanse.interlocks import check_max_ids, check_uuid, count_above_max, decide
from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import CleanseOptions, CleanseRefused, SUBDIRECTORIES, TABLES
from ansible_collections.omero.backup.plugins.module_utils.cleanse.results import (Listing, new_result, new_stats, open_spool, set_changed, spool_read,
                                                                                   spool_write, totals, write_report)
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import entry_id
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCli, OmeroCliError


_OMERO_LISTED = re.compile(r'^\s*\\_ (?P<path>.*) \((?P<action>remove|removedir|keep|ignored/keep)\)\s*$')
_OMERO_REMOVING = re.compile(r'^Removing (?P<path>/.*)$')
_OMERO_CONTEXT = re.compile(r'^Cleansing context: (?P<files>\d+) files \((?P<bytes>\d+) bytes\)$')


def parse_omero_output(text, datadir):
    """What ``omero admin cleanse`` printed, as data.

    Dry runs list files as ``   \\_ PATH (remove)``, directories named like
    an id as ``(removedir)`` (the real run never removes those) and, for the
    ManagedRepository, empty directories as ``(remove)`` too. A real run
    prints only ``Removing PATH`` for ManagedRepository directories, and
    OSError texts for files it could not delete. The byte total in the
    ``Cleansing context`` line is ignored: omero-py assigns instead of adding.
    """
    root = datadir.rstrip('/') + '/'
    parsed = {'files': [], 'id_dirs': [], 'managed_dirs': [], 'missing': [], 'other': [], 'context': None}
    for line in text.splitlines():
        match = _OMERO_LISTED.match(line)
        if match:
            path, action = match.group('path'), match.group('action')
            relpath = path[len(root):] if path.startswith(root) else path
            if action == 'remove':
                if relpath.startswith('ManagedRepository/') or path.endswith('/'):
                    parsed['managed_dirs'].append(relpath)
                else:
                    parsed['files'].append(relpath)
            elif action == 'removedir':
                parsed['id_dirs'].append(relpath)
            continue
        match = _OMERO_REMOVING.match(line)
        if match:
            path = match.group('path')
            parsed['managed_dirs'].append(path[len(root):] if path.startswith(root) else path)
            continue
        match = _OMERO_CONTEXT.match(line.strip())
        if match:
            parsed['context'] = {'files': int(match.group('files')), 'bytes': int(match.group('bytes'))}
            continue
        stripped = line.strip()
        if stripped.endswith('does not exist. Skipping...'):
            parsed['missing'].append(stripped[:-len(' does not exist. Skipping...')])
        elif stripped and not stripped.startswith(('Reconciling OMERO data directory', 'Removing empty directories from')) \
                and not stripped.startswith(root.rstrip('/')) and not stripped.startswith('No action taken for directory'):
            parsed['other'].append(stripped)
    return parsed


def omero_login_args(params):
    opts = CleanseOptions.of(params)
    return ['-s', opts.omero_host, '-p', str(opts.omero_port), '-u', opts.omero_user]


def omero_cleanse_runs(params, subdirectories, dry_run=False):
    """The ``admin cleanse`` argument lists to run, one per invocation.

    Without --subdirectory omero also removes empty ManagedRepository
    directories (through the server, with their rows), so each directory is
    named unless that is asked for; ``--subdirectory ManagedRepository``
    (omero-py 5.22+) does only that part.
    """
    opts = CleanseOptions.of(params)
    datadir = opts.datadir
    dry_run = ['--dry-run'] if dry_run else []
    managed = bool(opts.managed_repository_empty_dirs)
    if managed and list(subdirectories) == list(SUBDIRECTORIES):
        return [['admin', 'cleanse'] + dry_run + [datadir]]
    names = list(subdirectories) + (['ManagedRepository'] if managed else [])
    return [['admin', 'cleanse'] + dry_run + ['--subdirectory', name, datadir] for name in names]


class OmeroSession(object):
    """Login once, keep the session from idling out, and log out at the end.

    The session lives in a private OMERO_SESSIONDIR so it neither reuses nor
    disturbs the system user's own sessions; the password travels only in
    OMERO_PASSWORD.
    """

    def __init__(self, cli, params):
        self.cli = cli
        self.opts = CleanseOptions.of(params)
        self.session_dir = None
        self.commands = []

    def _env(self):
        env = {'OMERO_SESSIONDIR': self.session_dir}
        if self.opts.omero_password:
            env['OMERO_PASSWORD'] = self.opts.omero_password
        return env

    def run(self, *args, **kwargs):
        argv = omero_login_args(self.opts) + list(args)
        self.commands.append(' '.join(args[:2]))
        return self.cli.run(*argv, extra_env=self._env(), check=kwargs.get('check', True))

    def __enter__(self):
        self.session_dir = tempfile.mkdtemp(prefix='omero-cleanse-sessions.')
        if os.geteuid() == 0 and self.cli.user:
            import pwd
            try:
                account = pwd.getpwnam(self.cli.user)
                os.chown(self.session_dir, account.pw_uid, account.pw_gid)
            except KeyError:
                pass
        try:
            self.run('sessions', 'login')
        except Exception:
            shutil.rmtree(self.session_dir, ignore_errors=True)
            raise
        timeout = self.opts.session_idle_timeout
        if timeout:
            rc, out, err = self.run('sessions', 'timeout', str(int(timeout)), check=False)
            if rc != 0:
                self.warning = 'could not raise the session idle timeout to %ss: %s' % (timeout, (err or out).strip())
        return self

    warning = None

    def __exit__(self, *exc_info):
        try:
            self.run('sessions', 'logout', check=False)
        finally:
            shutil.rmtree(self.session_dir, ignore_errors=True)
        return False


def _omero_dry_run(session, params, subdirectories):
    listed = {'files': [], 'id_dirs': [], 'managed_dirs': [], 'other': [], 'missing': []}
    for argv in omero_cleanse_runs(params, subdirectories, dry_run=True):
        _rc, out, _err = session.run(*argv)
        parsed = parse_omero_output(out, CleanseOptions.of(params).datadir)
        for key in listed:
            listed[key].extend(parsed[key])
    return listed


def cleanse_omero(params, runner, check_mode, now=None):
    """Cleanse with the real ``omero admin cleanse``; same result shape as cleanse_database."""
    started = time.time()
    now = time.time() if now is None else now
    opts = copy.copy(CleanseOptions.of(params))
    opts.datadir = opts.datadir.rstrip('/') or '/'
    if opts.quarantine_dir:
        raise OmeroBackupError('quarantine_dir needs backend database: omero admin cleanse can only delete')
    if not os.path.isdir(opts.datadir):
        raise OmeroBackupError('data directory %s does not exist' % opts.datadir)
    result = new_result(opts, 'omero')
    result['check_mode'] = bool(check_mode)
    cli = OmeroCli(runner, **opts.cli_options())
    conn, overridable = database_facts(opts, result, opts.subdirectories)
    if conn is not None:
        overridable.extend(problem for problem in [check_uuid(opts.datadir, result['db_uuid'])] if problem)
    try:
        with OmeroSession(cli, opts) as session:
            if session.warning:
                result['warnings'].append(session.warning)
            listed = _omero_dry_run(session, opts, opts.subdirectories)
            spool = open_spool()
            try:
                blocking = _spool_orphans(opts, listed['files'], spool, result, now)
                if conn is not None:
                    _check_ids_above_max(conn, opts, spool, result, overridable)
                result['warnings'].extend('omero: %s' % escape_name(line) for line in listed['other'][:20])
                totals(result)
                result['empty_dirs'] = len(listed['managed_dirs'])
                try:
                    decide(result, blocking, overridable, opts.force)
                except CleanseRefused:
                    result['duration'] = round(time.time() - started, 3)
                    raise
                _run_or_report(session, opts, spool, result, check_mode)
            finally:
                spool.close()
    except OmeroCliError as exc:
        raise OmeroBackupError(str(exc))
    finally:
        if conn is not None:
            conn.close()
    totals(result)
    result['empty_dirs'] = len(listed['managed_dirs'])
    result['empty_dirs_removed'] = len(result['managed_dirs_removed'])
    set_changed(result, check_mode)
    result['duration'] = round(time.time() - started, 3)
    return result


def _spool_orphans(opts, files, spool, result, now):
    """Spool the orphans omero's dry run listed and count them; returns the blocking reasons (young files)."""
    sample = Listing(opts.max_listed)
    young = []
    for subdir in opts.subdirectories:
        result['subdirectories'][subdir] = new_stats()
    for relpath in files:
        stats = result['subdirectories'].setdefault(relpath.split('/', 1)[0], new_stats())
        try:
            info = os.lstat(os.path.join(opts.datadir, relpath))
        except OSError:
            continue
        if info.st_mtime > now - opts.min_age_seconds:
            stats['kept_young'] += 1
            young.append(relpath)
            continue
        object_id = entry_id(os.path.basename(relpath))
        stats['orphans'] += 1
        stats['orphan_bytes'] += info.st_size
        if object_id is not None and (stats['highest_orphan_id'] is None or object_id > stats['highest_orphan_id']):
            stats['highest_orphan_id'] = object_id
        spool_write(spool, relpath, info.st_size, object_id if object_id is not None else -1)
        sample.add(relpath)
    result['listed'] = sample.sample
    result['listed_truncated'] = sample.truncated
    if not young:
        return []
    # omero removes every orphan it finds: a file being written can only be protected by not running it.
    return ['%d orphan(s) are younger than min_age (e.g. %s); omero admin cleanse cannot skip single files, so it is '
            'not run.' % (len(young), escape_name(young[0]))]


def _check_ids_above_max(conn, opts, spool, result, overridable):
    for subdir in opts.subdirectories:
        stats = result['subdirectories'][subdir]
        result['queries'] += 1
        row = postgres.query_one(conn, 'SELECT max(id) FROM public.%s' % TABLES[subdir])
        stats['db_max_id'] = row[0] if row else None
    spool.flush()
    count_above_max(spool, result, opts.max_id_margin)
    overridable.extend(problem for problem in [check_max_ids(result, opts.max_id_margin)] if problem)


def _run_or_report(session, opts, spool, result, check_mode):
    """Run omero admin cleanse (not in check mode) and count what it removed; write the report file."""
    if check_mode:
        result['managed_dirs_removed'] = []
        if opts.report_file:
            write_report(opts.report_file, spool, result)
        return
    for argv in omero_cleanse_runs(opts, opts.subdirectories):
        _rc, out, _err = session.run(*argv)
        parsed = parse_omero_output(out, opts.datadir)
        result['managed_dirs_removed'].extend(escape_name(path) for path in parsed['managed_dirs'])
        result['errors'].extend(escape_name(line) for line in parsed['other'][:50])
    done = set()
    for relpath, size, _object_id in spool_read(spool):
        if not os.path.lexists(os.path.join(opts.datadir, relpath)):
            stats = result['subdirectories'][relpath.split('/', 1)[0]]
            stats['removed'] += 1
            stats['removed_bytes'] += size
            done.add(relpath)
    if opts.report_file:
        write_report(opts.report_file, spool, result, removed_paths=done)
