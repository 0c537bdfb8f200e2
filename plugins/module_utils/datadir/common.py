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

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.locking import datadir_lock_path, take_lock
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.engines.base import DATADIR, DEFAULT_EXCLUDES, EngineError, engine_for
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import postgres_argument_spec

# The engines the data dir modules offer (issue 14 adds restic here and in engines.base.engine_for).
ENGINES = ['rdiff-backup']


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


def backup_argument_spec():
    spec = ssh_argument_spec()
    spec.update(engine_argument_spec())
    spec.update(
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

    def engine_settings(self):
        """What the chosen engine is built with: rdiff-backup's executables and ssh (restic, issue 14, adds its
        repository and password settings here, chosen by ``engine``)."""
        return dict(executable=self.rdiff_backup, remote_executable=self.remote_rdiff_backup, ssh_user=self.ssh_user,
                    ssh_key=self.ssh_key, ssh_port=self.ssh_port, ssh_options=self.ssh_options)

    def make_engine(self, runner):
        """The engine named by ``engine`` (engines.base.engine_for)."""
        return engine_for(DATADIR, self.engine, runner, **self.engine_settings())


class BackupOptions(Options):
    SPEC = staticmethod(backup_argument_spec)


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
