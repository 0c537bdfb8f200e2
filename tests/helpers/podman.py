# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Podman hosts for the tests: the project's image and ssh-reachable containers on the podman bridge."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import os
import subprocess
import time
import uuid

from helpers.ansible import REPO_ROOT, VENV_BIN

CONTAINERS_CONF = os.path.join(REPO_ROOT, 'tests', 'podman', 'containers.conf')
BUILD_IMAGE = os.path.join(REPO_ROOT, 'scripts', 'build_image.sh')


def podman_env():
    """The environment podman and the build scripts need here (environment.md: runc, ulimits)."""
    env = dict(os.environ, CONTAINERS_CONF=os.environ.get('CONTAINERS_CONF', CONTAINERS_CONF))
    env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '/usr/bin:/bin')
    return env


def podman(*args, **kwargs):
    """Run podman; with check (the default) a failure raises, showing podman's output."""
    check = kwargs.pop('check', True)
    proc = subprocess.run(['podman'] + list(args), env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError('podman %s: rc %d\n%s\n%s' % (' '.join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc


def run_script(path):
    """Run a build script (it prints the image name last); a failure raises with the end of its stderr."""
    proc = subprocess.run([path], env=podman_env(), check=False, universal_newlines=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise AssertionError('%s failed (rc %d):\n%s' % (os.path.basename(path), proc.returncode, proc.stderr[-4000:]))
    return proc.stdout.strip().splitlines()[-1]


def project_image():
    """The Debian 12 image the podman hosts run (scripts/build_image.sh builds it once)."""
    return run_script(BUILD_IMAGE)


@contextlib.contextmanager
def ssh_host(purpose, keys_dir, image=None):
    """A container of the test image running sshd, root reachable with a fresh key, its host key pinned.

    Yields {'name', 'address', 'key', 'known_hosts'}; the container is removed afterwards. Host key checking stays
    on, as in production.
    """
    image = image or project_image()
    key = os.path.join(keys_dir, 'id_ed25519')
    subprocess.check_call(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'omero-backup-%s' % purpose, '-f', key])
    name = 'omero-backup-test-%s-%s' % (purpose, uuid.uuid4().hex[:8])
    podman('run', '-d', '--name', name, image, '/bin/sleep', 'infinity')
    try:
        with open(key + '.pub') as handle:
            podman('exec', '-i', name, 'sh', '-c',
                   'ssh-keygen -A >/dev/null && mkdir -p -m 700 /root/.ssh && '
                   'cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && /usr/sbin/sshd',
                   input=handle.read())
        address = podman('inspect', '-f', '{{.NetworkSettings.IPAddress}}', name).stdout.strip()
        host_key = podman('exec', name, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub').stdout.split()
        known_hosts = os.path.join(keys_dir, 'known_hosts')
        with open(known_hosts, 'w') as handle:
            handle.write('%s %s %s\n' % (address, host_key[0], host_key[1]))
        deadline = time.time() + 20
        while podman('exec', name, 'sh', '-c', 'test -s /run/sshd.pid', check=False).returncode != 0:
            assert time.time() < deadline, 'sshd did not start in %s' % name
            time.sleep(0.3)
        yield {'name': name, 'address': address, 'key': key, 'known_hosts': known_hosts}
    finally:
        podman('rm', '-f', '-t', '0', name, check=False)
