# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PostgreSQL 15 cluster of a test's own with a pgBackRest repository beside it, all under one private root.

The repository, pgBackRest's lock and log directories belong to the cluster user (postgres); the configuration file
lives in a root-owned directory (the db_archive module writes it 0640 root:postgres). No fixed name under /tmp:
everything is below ``root``, which the caller takes from pytest's (short) basetemp.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import grp
import os
import pwd
import secrets
import subprocess
import time

from omero_sandbox.cluster import Cluster
from omero_sandbox.system import as_user, chown, find_pg_bindir, free_port, make_traversable

PG_USER = 'postgres'


class PgBackRestSite(object):
    """One cluster (stopped until ``start``), one repository, one stanza, and the module arguments that name them."""

    def __init__(self, root, stanza='omero'):
        self.root = root
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        make_traversable(root)
        self.stanza = stanza
        self.port = free_port()
        self.cluster = Cluster(os.path.join(root, 'pg'), self.port, find_pg_bindir(), PG_USER)
        os.mkdir(self.cluster.root, 0o755)
        self.cluster.initdb(secrets.token_hex(12))
        for name in ('repo', 'lock', 'log'):
            path = os.path.join(root, name)
            os.mkdir(path, 0o750 if name == 'repo' else 0o700)
            chown(path, PG_USER)
        self.repo = os.path.join(root, 'repo')
        self.etc = os.path.join(root, 'etc')
        os.mkdir(self.etc, 0o755)
        self.config = os.path.join(self.etc, 'pgbackrest.conf')
        self.drill_port = free_port()

    @property
    def pgdata(self):
        return self.cluster.pgdata

    def start(self):
        self.cluster.start()

    def stop(self):
        self.cluster.stop()

    def connection(self):
        return {'login_unix_socket': self.cluster.sockdir, 'port': self.port, 'login_user': 'postgres'}

    def archive_args(self, **extra):
        args = dict(self.connection(), stanza=self.stanza, config=self.config, pg_path=self.pgdata, repo_path=self.repo,
                    lock_path=os.path.join(self.root, 'lock'), log_path=os.path.join(self.root, 'log'),
                    archive_timeout=5, retention_full=2, check_timeout=20, pg_bindir=self.cluster.bindir)
        args.update(extra)
        return args

    def dump_args(self, backup_type='full', **extra):
        args = dict(self.connection(), engine='pgbackrest', stanza=self.stanza, config=self.config, type=backup_type)
        args.update(extra)
        return args

    def restore_args(self, **extra):
        args = dict(self.connection(), engine='pgbackrest', stanza=self.stanza, config=self.config,
                    pg_bindir=self.cluster.bindir, lock_dir=os.path.join(self.root, 'locks'))
        args.update(extra)
        if not os.path.isdir(args['lock_dir']):
            os.mkdir(args['lock_dir'], 0o700)
        return args

    def psql(self, sql, port=None, host=None, dbname='postgres'):
        """Output of ``psql -Atc sql`` as the cluster user (this cluster, or a drill on ``port``/``host``)."""
        argv = as_user(PG_USER, [os.path.join(self.cluster.bindir, 'psql'), '-h', host or self.cluster.sockdir, '-p',
                                 str(port or self.port), '-d', dbname, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                                 '-c', sql])
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if proc.returncode != 0:
            raise AssertionError('psql %r failed: %s' % (sql, proc.stderr))
        return proc.stdout.strip()

    def pgbackrest(self, *args):
        """(rc, out, err) of pgbackrest as the cluster user with this site's configuration."""
        argv = as_user(PG_USER, ['pgbackrest', '--config=' + self.config, '--stanza=' + self.stanza] + list(args))
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def wait_archived(self, segment, timeout=60):
        """Wait until pg_stat_archiver has archived ``segment`` (or a later one)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            last = self.psql('SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver')
            if last and last[:24] >= segment:
                return last
            time.sleep(0.2)
        raise AssertionError('WAL %s was not archived within %d s (last: %s)' % (segment, timeout, last))

    def switch_wal(self):
        """Close the current WAL segment (so it is archived); returns its name."""
        return self.psql('SELECT pg_walfile_name(pg_switch_wal())')

    def destroy(self):
        subprocess.run(as_user(PG_USER, [os.path.join(self.cluster.bindir, 'pg_ctl'), '-D', self.pgdata, '-m', 'immediate',
                                         'stop']), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)


def stop_drill(site, path):
    """Stop a drill cluster left running by a failed test (db_restore state=absent does it otherwise)."""
    if os.path.exists(os.path.join(path, 'postmaster.pid')):
        subprocess.run(as_user(PG_USER, [os.path.join(site.cluster.bindir, 'pg_ctl'), '-D', path, '-m', 'immediate', 'stop']),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)


def cmdlines_with(secret, own_pid=None):
    """Processes whose /proc/<pid>/cmdline holds ``secret`` (pid, argv)."""
    found = []
    needle = secret.encode()
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == own_pid:
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                data = handle.read()
        except (IOError, OSError):
            continue
        if needle in data:
            found.append((int(entry), data.split(b'\0')))
    return found


def owner_names(path):
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, st.st_mode & 0o7777
