# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the data dir backup and restore steps share: their options, read once from the module's params; the
error that carries a partial result; the locks; the engine they run.

The argument specs live here, once: the modules pass them to AnsibleModule, and an options object takes a value
missing from params (a caller without Ansible) from the same spec, so no default is written twice.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import errno
import os
import socket

from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.locking import datadir_lock_path, take_lock
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.engines.base import DATADIR, DEFAULT_EXCLUDES, EngineError, engine_for
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import postgres_argument_spec

# The engines the data dir modules offer (the first is the default).
ENGINES = ['rdiff-backup', 'restic']


class DatadirError(OperationFailed):
    """Raised with a message for the operator and the partial result gathered so far."""


def ssh_argument_spec():
    """How datadir_backup and datadir_restore reach a remote repository (doc fragment omero.backup.rdiff_ssh)."""
    return dict(
        ssh_user=dict(type='str'),
        ssh_key=dict(type='path', no_log=False),
        ssh_port=dict(type='int'),
        ssh_options=dict(type='list', elements='str', default=[]),
        rdiff_backup=dict(type='str', default='rdiff-backup'),
        remote_rdiff_backup=dict(type='str', default='rdiff-backup'),
    )


def engine_argument_spec():
    return dict(engine=dict(type='str', choices=list(ENGINES), default=ENGINES[0]))


def restic_argument_spec():
    """What the restic engine needs to open a repository (engine=restic; ignored by rdiff-backup). Secrets reach
    restic only through its environment: the password as RESTIC_PASSWORD or RESTIC_PASSWORD_FILE, S3 keys as
    AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_SHARED_CREDENTIALS_FILE."""
    return dict(
        restic=dict(type='str', default='restic'),
        password_file=dict(type='path', no_log=False),
        password=dict(type='str', no_log=True),
        s3_access_key_id=dict(type='str', no_log=True),
        s3_secret_access_key=dict(type='str', no_log=True),
        s3_credentials_file=dict(type='path', no_log=False),
        restic_host=dict(type='str'),
        lock_lease=dict(type='str', default='30m'),
    )


def backup_argument_spec():
    spec = ssh_argument_spec()
    spec.update(engine_argument_spec())
    spec.update(restic_argument_spec())
    spec.update(
        label=dict(type='str'),
        extra=dict(type='list', elements='path', default=[]),
        keep_last=dict(type='int'),
        keep_daily=dict(type='int'),
        keep_weekly=dict(type='int'),
        keep_monthly=dict(type='int'),
        verify_read_data=dict(type='str', default='none'),
        verify_rotation=dict(type='int', default=7),
        verify_state_dir=dict(type='path', default='/var/lib/omero-backup/state'),
        src=dict(type='path', default='/OMERO'),
        dest=dict(type='str', required=True),
        exclude=dict(type='list', elements='str', default=list(DEFAULT_EXCLUDES)),
        exclude_fulltext=dict(type='bool', default=False),
        symlinks_outside=dict(type='str', choices=['warn', 'fail', 'ignore'], default='warn'),
        verify=dict(type='bool', default=True),
        keep_increments_for=dict(type='str'),
        skip_if_newer_than=dict(type='str'),
        file_statistics=dict(type='bool', default=False),
    )
    return spec


def restore_argument_spec():
    spec = postgres_argument_spec()
    spec.update(ssh_argument_spec())
    spec.update(engine_argument_spec())
    spec.update(restic_argument_spec())
    spec.update(
        src=dict(type='str', required=True),
        dest=dict(type='path', default='/OMERO'),
        at=dict(type='str', default='now'),
        state=dict(type='str', choices=['present', 'replaced'], default='present'),
        keep_replaced=dict(type='bool', default=True),
        verify=dict(type='bool', default=False),
        owner=dict(type='str'),
        group=dict(type='str'),
        db=dict(type='str'),
        include=dict(type='list', elements='path', default=[]),
    )
    return spec


class Options(object):
    """The module's options as attributes, read once; ``connection`` holds the PostgreSQL ones as a mapping
    (what tools/postgres takes)."""

    SPEC = None

    def __init__(self, params):
        values = given(self.SPEC(), params)
        for name, value in values.items():
            setattr(self, name, value)
        self.connection = dict((name, values[name]) for name in postgres_argument_spec() if name in values)
        # Read once, whatever the engine: a spelling outside the grammar is refused before anything runs.
        if 'lock_lease' in values:
            self.lock_lease = parse_duration(values['lock_lease'], 'lock_lease')

    def engine_settings(self):
        """What the chosen engine is built with: its executable, ssh, and for restic the secrets, retention,
        verify and lock settings."""
        ssh = dict(ssh_user=self.ssh_user, ssh_key=self.ssh_key, ssh_port=self.ssh_port, ssh_options=self.ssh_options)
        if self.engine != 'restic':
            return dict(executable=self.rdiff_backup, remote_executable=self.remote_rdiff_backup, **ssh)
        settings = dict(executable=self.restic, password=self.password, password_file=self.password_file,
                        s3_access_key_id=self.s3_access_key_id, s3_secret_access_key=self.s3_secret_access_key,
                        s3_credentials_file=self.s3_credentials_file, hostname=self.restic_host,
                        lock_lease=self.lock_lease, **ssh)
        settings.update(self.restic_settings())
        return settings

    def restic_settings(self):
        return {}

    def make_engine(self, runner):
        """The engine named by ``engine`` (engines.base.engine_for)."""
        return engine_for(DATADIR, self.engine, runner, **self.engine_settings())


class BackupOptions(Options):
    SPEC = staticmethod(backup_argument_spec)

    def restic_settings(self):
        # The backup lists and forgets only this host's snapshots of this data dir.
        return dict(hostname=self.restic_host or socket.gethostname(), source=os.path.realpath(self.src), keep_last=self.keep_last, keep_daily=self.keep_daily,
                    keep_weekly=self.keep_weekly, keep_monthly=self.keep_monthly,
                    verify_read_data=self.verify_read_data, verify_rotation=self.verify_rotation,
                    verify_state_dir=self.verify_state_dir)


class RestoreOptions(Options):
    SPEC = staticmethod(restore_argument_spec)


def inside(child, parent):
    child = os.path.abspath(child).rstrip('/') + '/'
    parent = os.path.abspath(parent).rstrip('/') + '/'
    return child.startswith(parent)


def has_repo_uuid(datadir):
    base = os.path.join(datadir, '.omero', 'repository')
    try:
        return sorted(name for name in os.listdir(base) if os.path.isfile(os.path.join(base, name, 'repo_uuid')))
    except OSError:
        return []


@contextlib.contextmanager
def repository_locked(result, purpose, check_mode, read_only=False):
    """Our lock on the repository (``result['lock']``); check mode changes nothing and takes none.

    ``read_only``: a repository on read-only media (restores) cannot take a lock file, and no backup can write
    there either, so the run goes on without one.
    """
    if check_mode:
        yield
        return
    try:
        lock = take_lock(result['lock'], purpose, 'Nothing was changed.', result, error=DatadirError)
    except DatadirError as exc:
        if exc.busy or not read_only or exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        result['warnings'].append('no lock taken (%s is not writable: %s); make sure no backup writes to the '
                                  'repository meanwhile' % (result['lock'], exc.reason))
        yield
        return
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def datadir_locked(dest, check_mode, result):
    """The data dir's own lock, which cleanse takes too: a cleanse must never run over a restore in progress."""
    if check_mode:
        yield
        return
    try:
        result['datadir_lock'] = datadir_lock_path(dest)
    except OSError as exc:
        raise DatadirError('no lock for the data dir %s: %s; nothing changed' % (dest, exc.strerror or exc), result)
    lock = take_lock(result['datadir_lock'], 'datadir restore into %s' % dest, 'Restore refused, nothing changed.', result,
                     error=DatadirError)
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def engine_errors(result):
    """An engine's refusal fails the step with the partial result and the facts the engine found."""
    try:
        yield
    except EngineError as exc:
        result.update(exc.details)
        raise DatadirError(str(exc), result)
