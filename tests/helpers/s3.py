# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real repository servers on loopback for the restic tests: rclone's S3 server and its restic REST server.

``rclone serve s3`` is a real S3 implementation (SigV4 auth, path-style buckets, multipart uploads) over a
local directory: each top-level directory is a bucket, each file below it an object, so a test can corrupt or
remove an object by touching the file. ``rclone serve restic`` is restic's REST protocol over a directory.

Usage (module-scoped, one server for a test module)::

    from helpers.s3 import S3Server

    @pytest.fixture(scope='module')
    def s3(tmp_path_factory):
        with S3Server(str(tmp_path_factory.mktemp('s3'))) as server:
            yield server

    server.repository('repo')   # 's3:http://127.0.0.1:PORT/omero-backup/repo'
    server.env                  # {'AWS_ACCESS_KEY_ID': ..., 'AWS_SECRET_ACCESS_KEY': ...}
    server.object_path('repo/config')   # the file behind that object
    server.restart()            # same port, same data: "the S3 server restarted"
    server.stop(); server.start()

Notes measured with rclone 1.75.2 and restic 0.14.0: an access key shorter than a few characters ('AK') is
refused by rclone with InvalidAccessKeyId, so the default keys are long; restic creates a missing bucket itself
on ``init``, but the bucket directory is made here anyway so a test may list it before the first init.
Start-up takes about 0.2 s.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import socket
import subprocess
import time

RCLONE = os.environ.get('OMERO_BACKUP_RCLONE', '/var/cache/omero-backup/venv/bin/rclone')
ACCESS_KEY = 'omerobackuptestaccess'
SECRET_KEY = 'omerobackuptestsecret0123456789'
BUCKET = 'omero-backup'


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _wait_listening(port, proc, log_path, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            with open(log_path, 'rb') as handle:
                raise RuntimeError('rclone exited %s before listening: %s' % (proc.returncode, handle.read()[-2000:]))
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('rclone did not listen on 127.0.0.1:%d within %.0f s' % (port, timeout))


class _RcloneServer(object):
    """An ``rclone serve <kind>`` process over ``root`` on 127.0.0.1:<port>; a context manager."""

    kind = None

    def __init__(self, root, port=None):
        self.root = os.path.abspath(root)
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(self.root), os.path.basename(self.root) + '.rclone.log')
        os.makedirs(self.root, exist_ok=True)

    @property
    def address(self):
        return '127.0.0.1:%d' % self.port

    @property
    def url(self):
        return 'http://%s' % self.address

    def argv(self):
        return [RCLONE, 'serve', self.kind, '--config', '/dev/null', '--addr', self.address]

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            return self
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(self.argv() + [self.root], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        _wait_listening(self.port, self.proc, self.log_path)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self):
        """SIGKILL, as a crash of the server would do it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class S3Server(_RcloneServer):
    """``rclone serve s3`` with one key pair; the bucket ``bucket`` exists from the start."""

    kind = 's3'

    def __init__(self, root, port=None, access_key=ACCESS_KEY, secret_key=SECRET_KEY, bucket=BUCKET):
        super(S3Server, self).__init__(root, port)
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        os.makedirs(os.path.join(self.root, bucket), exist_ok=True)

    def argv(self):
        return super(S3Server, self).argv() + ['--auth-key', '%s,%s' % (self.access_key, self.secret_key)]

    @property
    def env(self):
        """The environment restic (or any S3 client) needs for this server's keys."""
        return {'AWS_ACCESS_KEY_ID': self.access_key, 'AWS_SECRET_ACCESS_KEY': self.secret_key}

    def repository(self, prefix):
        """The restic repository spec of ``prefix`` in this server's bucket."""
        return 's3:%s/%s/%s' % (self.url, self.bucket, prefix.strip('/'))

    def object_path(self, key):
        """The file that holds object ``key`` of the bucket."""
        return os.path.join(self.root, self.bucket, key.lstrip('/'))


class RestServer(_RcloneServer):
    """``rclone serve restic`` (restic's REST protocol), no authentication: loopback only."""

    kind = 'restic'

    def repository(self, name):
        """The restic repository spec of ``name`` on this server."""
        return 'rest:%s/%s' % (self.url, name.strip('/'))

    def object_path(self, relpath):
        return os.path.join(self.root, relpath.lstrip('/'))
