# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The db_archive step: pgBackRest set up, idempotently, and its health.

``state=present`` on the database host (``side=database``): the configuration file (0640 root:<cluster group>, the
cipher pass only there, never on a command line), then ``archive_mode``/``archive_command``/``archive_timeout`` by
ALTER SYSTEM and a reload; a change that needs a restart (archive_mode, wal_level) is reported as
``restart_required`` and the restart is done only with ``restart_allowed``; then, when the repository is local,
``stanza-create`` (only when pgBackRest does not know the stanza) and ``pgbackrest check``. On a repository host
(``side=repository``): its configuration file (0600, the repository user's), the repository directory, the stanza and
the check (pgBackRest runs stanza-create on the host that holds the repository).

``state=health`` changes nothing: the age of the last full, diff and incr backup, the WAL archive's age as
PostgreSQL (pg_stat_archiver) and pgBackRest (the newest segment in the repository) see it, archive failures, the
repository's size, and the result of ``pgbackrest check``; the status module turns them into metrics.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import grp
import os
import pwd
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import apply_owner, atomic_write, ensure_private_dir
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.output import tail
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.engines.pgbackrest import archived_until
from ansible_collections.omero.backup.plugins.module_utils.tools import pgbackrest as tool
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres

ARCHIVE_SETTINGS = ('archive_mode', 'archive_command', 'archive_timeout', 'wal_level')
# The server log of a cluster restarted with pg_ctl (in its data directory, owned by the cluster user).
RESTART_LOG = 'omero-backup-restart.log'
# Settings PostgreSQL reads only at start.
RESTART_SETTINGS = ('archive_mode', 'wal_level')
CONFIG_COMMENT = ('Written by omero.backup (db_archive): edits are replaced on its next run.\n'
                  'Holds the repository cipher pass when encryption is on: keep it 0640 root:postgres or 0600.')


class DbArchiveError(OperationFailed):
    """db_archive refused or failed, explained."""


def archive_argument_spec():
    spec = postgres.postgres_argument_spec()
    spec.update(
        state=dict(type='str', choices=['present', 'health', 'verify'], default='present'),
        side=dict(type='str', choices=['database', 'repository'], default='database'),
        stanza=dict(type='str', default='omero'),
        config=dict(type='path', default='/etc/pgbackrest/pgbackrest.conf'),
        pg_path=dict(type='path', required=True),
        pg_port=dict(type='int'),
        pg_socket_path=dict(type='path'),
        pg_user=dict(type='str', default='postgres'),
        pg_host=dict(type='str'),
        pg_host_user=dict(type='str', default='postgres'),
        pg_host_config=dict(type='path'),
        repo_path=dict(type='path'),
        repo_user=dict(type='str', default='pgbackrest'),
        repo_host=dict(type='str'),
        repo_host_user=dict(type='str', default='pgbackrest'),
        repo_host_config=dict(type='path'),
        cipher_type=dict(type='str', choices=list(tool.CIPHER_TYPES), default='none'),
        cipher_pass=dict(type='str', no_log=True),
        retention_full=dict(type='int', default=2),
        retention_diff=dict(type='int'),
        process_max=dict(type='int', default=1),
        compress_type=dict(type='str', choices=list(tool.COMPRESS_TYPES), default='lz4'),
        archive_timeout=dict(type='int', default=60),
        restart_allowed=dict(type='bool', default=False),
        pg_service=dict(type='str'),
        check=dict(type='bool', default=True),
        check_timeout=dict(type='int', default=60),
        log_path=dict(type='path'),
        lock_path=dict(type='path'),
        pg_bindir=dict(type='path'),
    )
    return spec


class ArchiveOptions(object):
    """One db_archive run, read and checked once (defaults from the argument spec only)."""

    def __init__(self, params):
        values = given(archive_argument_spec(), params)
        for name, value in values.items():
            setattr(self, name, value)
        self.connection = values
        if self.pg_port is None:
            self.pg_port = self.port
        if self.pg_socket_path is None and not self.pg_host:
            self.pg_socket_path = self.login_unix_socket
        self.os_user = self.pg_user if self.side == 'database' else self.repo_user
        self.repo_local = self.side == 'repository' or not self.repo_host

    def validate(self):
        if not tool.STANZA_NAME.match(self.stanza or ''):
            raise DbArchiveError('stanza %r: use letters, digits, ".", "_" and "-"' % (self.stanza,))
        if self.repo_local and not self.repo_path:
            raise DbArchiveError('repo_path is required when the repository is on this host (side=repository, or no repo_host)')
        if self.side == 'repository' and not self.pg_host:
            raise DbArchiveError('side=repository needs pg_host, the database host pgBackRest reaches over ssh; a '
                                 'repository on the database host is set up with side=database and no repo_host')
        if self.side == 'database' and self.pg_host:
            raise DbArchiveError('pg_host is for side=repository; on the database host the cluster is local')
        if self.cipher_type != 'none' and not self.cipher_pass and self.repo_local:
            raise DbArchiveError('cipher_type=%s needs cipher_pass' % self.cipher_type)
        if self.cipher_type == 'none' and self.cipher_pass:
            raise DbArchiveError('cipher_pass is given but cipher_type is none: set cipher_type=aes-256-cbc')
        if self.retention_full < 1:
            raise DbArchiveError('retention_full must be 1 or more, got %d' % self.retention_full)
        if self.retention_diff is not None and self.retention_diff < 1:
            raise DbArchiveError('retention_diff must be 1 or more, got %d' % self.retention_diff)
        if self.process_max < 1:
            raise DbArchiveError('process_max must be 1 or more, got %d' % self.process_max)
        if self.archive_timeout < 0:
            raise DbArchiveError('archive_timeout must be 0 (off) or more seconds, got %d' % self.archive_timeout)
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            raise DbArchiveError('system user %s does not exist on this host' % self.os_user)
        return self


def config_text(opts):
    """The configuration file's text for ``opts`` (render_config: same options, same bytes)."""
    global_options = [('start-fast', True), ('process-max', opts.process_max), ('compress-type', opts.compress_type),
                      ('log-path', opts.log_path), ('lock-path', opts.lock_path)]
    if opts.repo_local:
        global_options += [('repo1-path', opts.repo_path), ('repo1-retention-full', opts.retention_full),
                           ('repo1-retention-diff', opts.retention_diff)]
        if opts.cipher_type != 'none':
            global_options += [('repo1-cipher-type', opts.cipher_type), ('repo1-cipher-pass', opts.cipher_pass)]
    else:
        global_options += [('repo1-host', opts.repo_host), ('repo1-host-user', opts.repo_host_user),
                           ('repo1-host-config', opts.repo_host_config or opts.config)]
    stanza_options = [('pg1-path', opts.pg_path), ('pg1-port', opts.pg_port), ('pg1-socket-path', opts.pg_socket_path)]
    if opts.side == 'repository':
        stanza_options += [('pg1-host', opts.pg_host), ('pg1-host-user', opts.pg_host_user),
                           ('pg1-host-config', opts.pg_host_config or opts.config)]
    elif opts.login_user and opts.login_user != 'postgres':
        stanza_options.append(('pg1-user', opts.login_user))
    return tool.render_config(global_options, opts.stanza, stanza_options, comment=CONFIG_COMMENT)


def config_ownership(opts):
    """(mode, owner, group) of the configuration file: 0640 root:<cluster group> on the database host when run as
    root (PostgreSQL's archive_command reads it), else 0600 of the user pgBackRest runs as."""
    entry = pwd.getpwnam(opts.os_user)
    if os.geteuid() == 0 and opts.side == 'database':
        return 0o640, 0, entry.pw_gid
    return 0o600, entry.pw_uid, entry.pw_gid


def _config_state(path, text, ownership):
    """(differs, before text or None, what differs): the file against the text and ownership wanted."""
    try:
        st = os.stat(path)
        with open(path) as handle:
            before = handle.read()
    except (IOError, OSError):
        return True, None, ['missing']
    mode, uid, gid = ownership
    what = []
    if before != text:
        what.append('content')
    if (st.st_mode & 0o7777) != mode:
        what.append('mode %04o -> %04o' % (st.st_mode & 0o7777, mode))
    if (st.st_uid, st.st_gid) != (uid, gid):
        what.append('owner')
    return bool(what), before, what


def write_config(opts, result, check_mode):
    text = config_text(opts)
    ownership = config_ownership(opts)
    differs, before, what = _config_state(opts.config, text, ownership)
    result['config'] = opts.config
    result['config_changed'] = differs
    if not differs:
        return False
    result['diff'] = {'before_header': opts.config, 'after_header': opts.config,
                      'before': tool.masked_config(before or ''), 'after': tool.masked_config(text)}
    result['config_changes'] = what
    if check_mode:
        return True
    parent = os.path.dirname(opts.config)
    if not os.path.isdir(parent):
        # 0750 root:<group>: the cluster user reaches its file, no one else lists the directory.
        ensure_private_dir(parent, 0o750, 0 if os.geteuid() == 0 else None, ownership[2])
    mode, uid, gid = ownership
    atomic_write(opts.config, text, mode=mode, owner=uid, group=gid)
    return True


def _settings(conn):
    """{name: (configured value, value in effect)}. The configured one is the last the configuration files set (an
    ALTER SYSTEM waiting for a restart included); PostgreSQL shows archive_command as "(disabled)" while
    archive_mode is off, so only the files tell what it is set to."""
    names = list(ARCHIVE_SETTINGS) + ['data_directory']
    effective = dict(postgres.query_all(conn, 'SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY(%s)',
                                        (names,)))
    configured = dict(postgres.query_all(conn, 'SELECT name, setting FROM pg_catalog.pg_file_settings '
                                               'WHERE name = ANY(%s) AND error IS NULL ORDER BY seqno', (names,)))
    return dict((name, (configured.get(name, effective.get(name)), effective.get(name))) for name in names)


def wanted_settings(opts):
    command = tool.archive_command(opts.config, opts.stanza)
    return [('archive_mode', 'on'), ('archive_command', command), ('archive_timeout', str(opts.archive_timeout))]


def configure_archiving(opts, runner, result, check_mode):
    """ALTER SYSTEM what differs, reload; restart when archive_mode/wal_level need it and it is allowed."""
    conn = postgres.connect(opts.connection, 'postgres')
    try:
        current = _settings(conn)
        data_directory = (current.get('data_directory') or (None,))[0]
        if data_directory and os.path.realpath(data_directory) != os.path.realpath(opts.pg_path):
            raise DbArchiveError('the server at %s runs the cluster in %s, not pg_path %s: pgBackRest would back up '
                                 'another cluster. Nothing was changed.'
                                 % (postgres.describe_target(opts.connection), data_directory, opts.pg_path))
        wanted = wanted_settings(opts)
        if current.get('wal_level', ('replica',))[0] == 'minimal':
            wanted.append(('wal_level', 'replica'))
        altered = [(name, value) for name, value in wanted if current.get(name, (None,))[0] != value]
        result['settings'] = dict((name, value) for name, value in wanted)
        result['settings_changed'] = [name for name, unused_value in altered]
        if not check_mode and altered:
            with conn.cursor() as cursor:
                for name, value in altered:
                    cursor.execute('ALTER SYSTEM SET %s = %%s' % name, (value,))
                cursor.execute('SELECT pg_catalog.pg_reload_conf()')
        wanted = dict(wanted)
        needs = [name for name in RESTART_SETTINGS if name in wanted and current.get(name, (None, None))[1] != wanted[name]]
    finally:
        conn.close()
    result['restart_required'] = bool(needs)
    result['restart_settings'] = needs
    if not needs:
        return bool(altered)
    if not opts.restart_allowed:
        result['warnings'].append('%s changes only when PostgreSQL restarts: WAL is not archived until then. Restart '
                                  'it (or run again with restart_allowed=true); backups fail meanwhile.' % ', '.join(needs))
        return bool(altered)
    if check_mode:
        result['restarted'] = True
        return True
    restart(opts, runner, result)
    conn = postgres.connect(opts.connection, 'postgres')
    try:
        after = _settings(conn)
    finally:
        conn.close()
    still = [name for name in needs if after.get(name, (None, None))[1] != result['settings'][name]]
    if still:
        raise DbArchiveError('PostgreSQL restarted but %s still wait for a restart' % ', '.join(still), result)
    result['restart_required'] = False
    result['restarted'] = True
    return True


def restart(opts, runner, result):
    """Restart the cluster: its systemd unit (pg_service) or pg_ctl restart of pg_path as the cluster user."""
    if opts.pg_service:
        argv = ['systemctl', 'restart', opts.pg_service]
    else:
        bindir = opts.pg_bindir or '/usr/lib/postgresql/%s/bin' % _pg_major(opts.pg_path)
        # -l: without it the restarted server writes its log to pg_ctl's output, which this run would wait on forever.
        argv = tool.as_user(opts.pg_user, [os.path.join(bindir, 'pg_ctl'), '-D', opts.pg_path, '-l',
                                           os.path.join(opts.pg_path, RESTART_LOG), '-m', 'fast', '-w', '-t', '120', 'restart'])
    result['commands'].append(argv)
    rc, out, err = runner(argv)
    if rc != 0:
        raise DbArchiveError('restarting PostgreSQL failed (rc %d): %s' % (rc, tail(err or out or '')), result)
    # pg_ctl restart -w returns once the server accepts connections; a systemd unit may return earlier.
    deadline = time.time() + 60
    while True:
        try:
            postgres.connect(opts.connection, 'postgres').close()
            return
        except postgres.PostgresError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def _pg_major(pg_path):
    try:
        with open(os.path.join(pg_path, 'PG_VERSION')) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        raise DbArchiveError('cannot read %s/PG_VERSION: set pg_bindir or pg_service to restart PostgreSQL' % pg_path)


def ensure_repository(opts, result, check_mode):
    """The repository directory on this host: made 0750 for the user pgBackRest runs as when missing."""
    if os.path.isdir(opts.repo_path):
        return False
    parent = os.path.dirname(opts.repo_path.rstrip('/')) or '/'
    if not os.path.isdir(parent):
        raise DbArchiveError('the parent of repo_path %s does not exist (an unmounted backup volume?); create it first'
                             % opts.repo_path)
    result['repo_created'] = True
    if not check_mode:
        os.mkdir(opts.repo_path, 0o750)
        apply_owner(opts.repo_path, opts.os_user, grp.getgrgid(pwd.getpwnam(opts.os_user).pw_gid).gr_name)
    return True


def ensure_stanza(opts, found, result, check_mode):
    """stanza-create when pgBackRest does not know the stanza yet (True: made, or would be)."""
    try:
        stanza = found.info()
    except tool.PgBackRestError as exc:
        raise DbArchiveError(str(exc), result)
    result['stanza_created'] = False
    if stanza['status'] not in (tool.STANZA_MISSING, tool.STANZA_NO_DATA):
        return False
    result['stanza_created'] = True
    if check_mode:
        return True
    try:
        found.stanza_create()
    except tool.PgBackRestError as exc:
        raise DbArchiveError(str(exc), result)
    return True


def run_check(opts, found, result):
    ok, problem = found.check(opts.check_timeout)
    result['check_ok'] = ok
    result['check_error'] = problem
    if not ok:
        raise DbArchiveError('pgbackrest check of stanza %s failed: %s' % (opts.stanza, problem), result)


def setup(params, runner, check_mode=False):
    """state=present: the module result (without ``failed``)."""
    opts = ArchiveOptions(params).validate()
    result = {'changed': False, 'side': opts.side, 'stanza': opts.stanza, 'restart_required': False, 'restarted': False,
              'stanza_created': False, 'check_ok': None, 'check_error': None, 'settings_changed': [], 'commands': [],
              'warnings': [], 'archive_command': tool.archive_command(opts.config, opts.stanza)}
    found = tool.PgBackRest(runner, opts.config, opts.stanza, os_user=opts.os_user)
    try:
        result['version'] = found.version()
    except tool.PgBackRestError as exc:
        raise DbArchiveError(str(exc), result)
    changed = False
    if opts.side == 'database':
        # The cluster is read (and matched against pg_path) before the configuration file is written.
        conn = postgres.connect(opts.connection, 'postgres')
        conn.close()
    changed |= write_config(opts, result, check_mode)
    if opts.repo_local and opts.side == 'repository':
        changed |= ensure_repository(opts, result, check_mode)
    if opts.side == 'database':
        changed |= configure_archiving(opts, runner, result, check_mode)
    if opts.repo_local and not (check_mode and result.get('config_changed') and result.get('repo_created')):
        if check_mode and result.get('config_changed'):
            # pgBackRest would read the old (or no) file: what stanza-create would do is not knowable yet.
            result['stanza_created'] = None
        else:
            changed |= ensure_stanza(opts, found, result, check_mode)
    if opts.check and not check_mode and not result['restart_required'] and opts.repo_local:
        run_check(opts, found, result)
    result['commands'] += found.commands
    result['changed'] = changed
    return result


def _age(now, epoch):
    return round(now - epoch, 3) if epoch is not None else None


def health(params, runner, check_mode=False):
    """state=health: facts only, nothing changed (``pgbackrest check`` switches a WAL file; skipped in check mode)."""
    opts = ArchiveOptions(params).validate()
    now = time.time()
    found = tool.PgBackRest(runner, opts.config, opts.stanza, os_user=opts.os_user)
    facts = {'stanza': opts.stanza, 'checked_at': tool.iso(now), 'checked_at_epoch': round(now, 3)}
    result = {'changed': False, 'health': facts, 'commands': found.commands, 'warnings': []}
    try:
        stanza = found.info()
        newest = found.archive_newest(stanza['archive_id'])
        archive_bytes = tool.tree_size(found.repo_ls('archive/%s' % opts.stanza, recurse=True))
    except tool.PgBackRestError as exc:
        # The repository does not answer (the store is down): PostgreSQL's side is what still tells how far behind
        # archiving is, so it is reported all the same.
        facts.update(repo_error=str(exc), check_ok=False, check_error=str(exc))
        if opts.side == 'database':
            facts.update(pg_archiver(opts, now))
        result['warnings'].append('pgBackRest cannot read the repository: %s' % exc)
        result['commands'] = list(found.commands)
        return result
    facts.update(repo_error=None, stanza_status=stanza['status'], stanza_message=stanza['message'], backups=len(stanza['backups']),
                 backup_running=stanza['backup_locked'])
    complete = [backup for backup in stanza['backups'] if not backup['error']]
    for kind in tool.BACKUP_TYPES:
        last = [backup for backup in complete if backup['type'] == kind]
        stop = last[-1]['stop'] if last else None
        facts['last_%s_time' % kind] = tool.iso(stop)
        facts['last_%s_epoch' % kind] = stop
        facts['last_%s_age_seconds' % kind] = _age(now, stop)
        facts['last_%s_label' % kind] = last[-1]['label'] if last else None
    until = archived_until(stanza, newest)
    facts.update(archive_max=newest[0] if newest else None, archived_until=tool.iso(until),
                 wal_archive_age_seconds=_age(now, newest[1] if newest else None),
                 repo_size_bytes=sum(backup['repo_delta'] or 0 for backup in stanza['backups']) + archive_bytes,
                 repo_archive_bytes=archive_bytes)
    if opts.side == 'database':
        facts.update(pg_archiver(opts, now))
    if opts.check and not check_mode:
        ok, problem = found.check(opts.check_timeout)
        facts.update(check_ok=ok, check_error=problem)
    else:
        facts.update(check_ok=None, check_error=None)
    result['commands'] = list(found.commands)
    return result


def pg_archiver(opts, now):
    """PostgreSQL's view of archiving (pg_stat_archiver): counts, the last archived and failed WAL, their ages."""
    conn = postgres.connect(opts.connection, 'postgres')
    try:
        row = postgres.query_one(conn, 'SELECT archived_count, last_archived_wal, '
                                       'extract(epoch FROM last_archived_time)::float8, failed_count, last_failed_wal, '
                                       'extract(epoch FROM last_failed_time)::float8, '
                                       "pg_catalog.current_setting('archive_mode') FROM pg_catalog.pg_stat_archiver")
    finally:
        conn.close()
    archived_count, last_wal, last_time, failed_count, failed_wal, failed_time, mode = row
    return {'archive_mode': mode, 'archived_count': archived_count, 'last_archived_wal': last_wal,
            'last_archived_time': tool.iso(last_time), 'pg_wal_archive_age_seconds': _age(now, last_time),
            'archive_failed_count': failed_count, 'last_failed_wal': failed_wal, 'last_failed_time': tool.iso(failed_time),
            'archive_failing': bool(failed_time and (last_time is None or failed_time > last_time))}


def verify(params, runner, check_mode=False):
    """state=verify: pgbackrest verify of the whole repository (every backup and the WAL); damage fails the task."""
    opts = ArchiveOptions(params).validate()
    found = tool.PgBackRest(runner, opts.config, opts.stanza, os_user=opts.os_user)
    result = {'changed': False, 'commands': found.commands, 'warnings': []}
    started = time.time()
    try:
        report = found.verify()
    except tool.PgBackRestError as exc:
        raise DbArchiveError(str(exc), result)
    result['verify'] = dict(report, seconds=round(time.time() - started, 3))
    result['commands'] = list(found.commands)
    if not report['ok']:
        bad = sorted(label for label, status in report['backups'].items() if status != 'valid')
        raise DbArchiveError('pgbackrest verify of stanza %s found damage (status %s): %s%s'
                             % (opts.stanza, report['status'], '; '.join(report['problems'][:5]) or 'see verify',
                                ' - backups not valid: %s' % ', '.join(bad) if bad else ''), result)
    return result


def run(params, runner, check_mode=False):
    state = params.get('state') or 'present'
    if state == 'health':
        return health(params, runner, check_mode)
    if state == 'verify':
        return verify(params, runner, check_mode)
    return setup(params, runner, check_mode)
