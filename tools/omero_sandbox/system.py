"""Running commands as the service users, ownership, ports and disk checks."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import pwd
import shutil
import socket
import subprocess

from .errors import SandboxError

DEFAULT_VENV = '/var/cache/omero-backup/venv'
DEFAULT_PG_BINDIRS = ('/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin',
                      '/usr/lib/postgresql/14/bin', '/usr/lib/postgresql/13/bin')


def is_root():
    return os.geteuid() == 0


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def service_user(name):
    """The account a service runs as: `name` when we are root, else ourselves (nobody else to become)."""
    if not is_root():
        return current_user()
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise SandboxError('system user %r does not exist; create it (scripts/bootstrap.sh does) or pass another user' % name)
    return name


def _runuser():
    for candidate in (shutil.which('runuser'), '/usr/sbin/runuser', '/sbin/runuser'):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SandboxError('runuser (util-linux) is needed to run commands as the postgres and omero users')


def as_user(user, argv):
    if is_root() and user != 'root':
        return [_runuser(), '-u', user, '--'] + list(argv)
    return list(argv)


def user_env(user, extra=None):
    entry = pwd.getpwnam(user)
    env = {
        'PATH': '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
        'HOME': entry.pw_dir if os.path.isdir(entry.pw_dir) else '/tmp',
        'USER': user,
        'LOGNAME': user,
        'LANG': 'C.UTF-8',
    }
    env.update(extra or {})
    return env


def run(argv, user=None, env=None, cwd=None, what=None, data=None):
    """Run argv (as user); raise SandboxError with the command's own output when it fails."""
    if user:
        argv = as_user(user, argv)
    try:
        proc = subprocess.run(argv, env=env, cwd=cwd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, check=False)
    except OSError as exc:
        raise SandboxError('%s: cannot run %s: %s' % (what or 'command', argv[0], exc))
    if proc.returncode != 0:
        raise SandboxError('%s failed (rc %d): %s\n%s%s'
                           % (what or argv[0], proc.returncode, ' '.join(argv), proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc.stdout


def chown_tree(path, user):
    if not is_root():
        return
    entry = pwd.getpwnam(user)
    run(['chown', '-R', '--no-dereference', '%d:%d' % (entry.pw_uid, entry.pw_gid), path], what='chown %s' % path)


def chown(path, user):
    if not is_root():
        return
    entry = pwd.getpwnam(user)
    os.lchown(path, entry.pw_uid, entry.pw_gid)


def make_traversable(path):
    """Let the postgres and omero-server users walk down to ROOT: add x for group/other on every parent."""
    path = os.path.abspath(path)
    parents = []
    while True:
        parents.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in parents:
        mode = os.stat(directory).st_mode & 0o7777
        if mode & 0o011 != 0o011:
            os.chmod(directory, mode | 0o011)


def check_port_free(port):
    """Fail now, before initdb, rather than with a postmaster log line later."""
    for family, address in ((socket.AF_INET, '127.0.0.1'),):
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise SandboxError('port %d on %s is already in use (or not allowed); pick another with --port' % (port, address))
            raise
        finally:
            probe.close()


def free_port():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


def check_disk(path, needed_bytes, needed_inodes):
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise SandboxError('not enough disk space under %s: the sandbox needs about %d MB, %d MB are free; '
                           'lower --objects/--db-size-mb or choose another ROOT' % (existing, needed_bytes // 2 ** 20, free // 2 ** 20))
    stat = os.statvfs(existing)
    if stat.f_files and stat.f_favail < needed_inodes:
        raise SandboxError('not enough free inodes under %s: the sandbox needs about %d, %d are free'
                           % (existing, needed_inodes, stat.f_favail))
    return free


def find_pg_bindir(bindir=None):
    candidates = [bindir] if bindir else list(DEFAULT_PG_BINDIRS)
    for candidate in candidates:
        if candidate and os.access(os.path.join(candidate, 'initdb'), os.X_OK):
            return candidate
    if bindir:
        raise SandboxError('no initdb in %s' % bindir)
    raise SandboxError('PostgreSQL server binaries not found (looked in %s); apt-get install postgresql' % ', '.join(candidates))


def find_omero_command(venv=None):
    venv = venv or os.environ.get('OMERO_BACKUP_VENV') or DEFAULT_VENV
    command = os.path.join(venv, 'bin', 'omero')
    if os.access(command, os.X_OK):
        return command
    return None


def rmtree(path):
    if os.path.islink(path) or not os.path.isdir(path):
        if os.path.lexists(path):
            os.unlink(path)
        return
    # rm(1) walks a million-entry tree in C; shutil.rmtree spends user time per entry in Python
    rm = shutil.which('rm') or '/bin/rm'
    proc = subprocess.run([rm, '-rf', '--one-file-system', '--', path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)
    if proc.returncode != 0 or os.path.lexists(path):
        raise SandboxError('could not remove %s: %s' % (path, proc.stderr.strip()))
