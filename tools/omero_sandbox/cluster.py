"""A PostgreSQL cluster of the sandbox's own: its own data dir, socket dir and port; no system service."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess
import sys

from .errors import SandboxError
from .system import as_user, chown, run

PG_HBA = """\
# omero_sandbox: trust on the private socket, passwords over TCP
local   all             all                                     trust
local   replication     all                                     trust
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
"""


class Cluster(object):

    def __init__(self, root, port, bindir, user):
        self.root = root
        self.port = port
        self.bindir = bindir
        self.user = user
        self.pgdata = os.path.join(root, 'pgdata')
        self.sockdir = os.path.join(root, 'pgsock')
        self.logfile = os.path.join(root, 'postgres.log')

    def tool(self, name):
        return os.path.join(self.bindir, name)

    def initdb(self, superuser_password):
        for directory, mode in ((self.pgdata, 0o700), (self.sockdir, 0o755)):
            os.mkdir(directory, mode)
            chown(directory, self.user)
        with open(self.logfile, 'a'):
            pass
        chown(self.logfile, self.user)
        # The superuser password reaches initdb through a file only its user can read, never argv.
        pwfile = os.path.join(self.root, '.initdb-pw')
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (superuser_password + '\n').encode('utf-8'))
            os.close(fd)
            chown(pwfile, self.user)
            run([self.tool('initdb'), '-D', self.pgdata, '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8',
                 '--auth-local=trust', '--auth-host=scram-sha-256', '--pwfile=' + pwfile, '--no-instructions',
                 '--no-sync'],
                user=self.user, env={'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'LANG': 'C.UTF-8'}, what='initdb')
        finally:
            os.unlink(pwfile)
        with open(os.path.join(self.pgdata, 'pg_hba.conf'), 'w') as handle:
            handle.write(PG_HBA)
        # In postgresql.conf rather than on pg_ctl's command line so that anyone's plain `pg_ctl start` gets them.
        with open(os.path.join(self.pgdata, 'postgresql.conf'), 'a') as handle:
            handle.write('\n# omero_sandbox\nport = %d\nunix_socket_directories = \'%s\'\nlisten_addresses = \'127.0.0.1\'\n'
                         'max_connections = 50\nshared_buffers = 64MB\nmax_wal_size = 2GB\n' % (self.port, self.sockdir))

    def is_running(self):
        if not os.path.isdir(self.pgdata):
            return False
        proc = subprocess.run(as_user(self.user, [self.tool('pg_ctl'), '-D', self.pgdata, 'status']),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        return proc.returncode == 0

    def start(self):
        if self.is_running():
            return
        try:
            run([self.tool('pg_ctl'), '-D', self.pgdata, '-l', self.logfile, '-w', '-t', '60', 'start'],
                user=self.user, env={'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'LANG': 'C.UTF-8'}, what='pg_ctl start')
        except SandboxError as exc:
            raise SandboxError('%s\nlast lines of %s:\n%s' % (exc, self.logfile, self.log_tail()))

    def stop(self):
        if not self.is_running():
            return
        run([self.tool('pg_ctl'), '-D', self.pgdata, '-m', 'fast', '-w', '-t', '60', 'stop'],
            user=self.user, env={'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'LANG': 'C.UTF-8'}, what='pg_ctl stop')

    def log_tail(self, lines=15):
        try:
            with open(self.logfile) as handle:
                return ''.join(handle.readlines()[-lines:])
        except OSError:
            return '(no log)'

    def connect(self, dbname='postgres', user='postgres'):
        try:
            import psycopg2
        except ImportError:
            raise SandboxError('psycopg2 is not importable by %s; run the sandbox with the project venv '
                               '(/var/cache/omero-backup/venv/bin/python)' % sys.executable)
        conn = psycopg2.connect(host=self.sockdir, port=self.port, user=user, dbname=dbname)
        return conn

    def create_owner_and_database(self, owner, owner_password, dbname):
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute('CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %%s' % owner, (owner_password,))
                cursor.execute("CREATE DATABASE %s OWNER %s ENCODING 'UTF8' TEMPLATE template0" % (dbname, owner))
        finally:
            conn.close()
