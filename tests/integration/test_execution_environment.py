# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment of execution-environment-debian.yml, built for real with ansible-builder and podman
(scripts/build_ee.sh, cached by a hash of what goes into it), used the way AWX uses it: as the controller.

Inside the image: the collection is installed at the galaxy.yml version, every module is documented, the controller
tools are there, a module runs against localhost, and a playbook dumps a real PostgreSQL database on another
container over ssh and fetches the dump into the EE, checking its sha256 against the one db_dump reported."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import textwrap

import pytest
import yaml

from helpers.ansible import REPO_ROOT, VENV_BIN
from helpers.podman import podman, run_script, ssh_host

BUILD_EE = os.path.join(REPO_ROOT, 'scripts', 'build_ee.sh')
# The image's default user, as AWX runs it (the entrypoint gives it a passwd entry and HOME=/runner).
EE_UID = 1000

# ansible-builder is not checked here: it is in requirements/dev.txt, so a venv without it is broken and
# build_ee.sh fails saying so.
HAVE_TOOLS = shutil.which('podman') and shutil.which('ssh-keygen')
pytestmark = pytest.mark.skipif(not HAVE_TOOLS, reason='needs podman and ssh-keygen')


def galaxy_version():
    with open(os.path.join(REPO_ROOT, 'galaxy.yml')) as handle:
        for line in handle:
            if line.startswith('version:'):
                return line.split(':', 1)[1].strip()
    raise AssertionError('galaxy.yml has no version')


def definition(name):
    with open(os.path.join(REPO_ROOT, name)) as handle:
        return yaml.safe_load(handle)


def test_both_definitions_install_the_same_ansible_and_collections():
    rpm, deb = definition('execution-environment.yml'), definition('execution-environment-debian.yml')
    for key in ('ansible_core', 'ansible_runner', 'galaxy'):
        assert rpm['dependencies'][key] == deb['dependencies'][key], key
    sources = [c['source'] for c in rpm['dependencies']['galaxy']['collections']]
    assert sources == ['./omero-backup-%s.tar.gz' % galaxy_version()]


def test_rpm_definition_renders_a_build_context(tmp_path):
    """execution-environment.yml cannot be built here (no Red Hat image is reachable): ansible-builder must at
    least accept it and render the Containerfile AWX/AAP users will build."""
    shutil.copy(os.path.join(REPO_ROOT, 'execution-environment.yml'), str(tmp_path))
    (tmp_path / ('omero-backup-%s.tar.gz' % galaxy_version())).write_bytes(b'')
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-builder'), 'create', '-f', 'execution-environment.yml', '-c', 'context'],
                          cwd=str(tmp_path), check=False, universal_newlines=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.returncode == 0, proc.stdout
    with open(str(tmp_path / 'context' / 'Containerfile')) as handle:
        containerfile = handle.read()
    assert 'ARG EE_BASE_IMAGE="registry.access.redhat.com/ubi9/ubi:latest"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    with open(str(tmp_path / 'context' / '_build' / 'bindep.txt')) as handle:
        assert handle.read().split('\n')[0] == 'openssh-clients [platform:rpm]'


@pytest.fixture(scope='module')
def ee_image():
    # The image id, not the tag: a concurrent run from another tree may retag the name meanwhile.
    return podman('image', 'inspect', '--format', '{{.Id}}', run_script(BUILD_EE)).stdout.strip()


def ee_run(image, *argv, **kwargs):
    """Run argv in a throw-away container of the EE; volumes: list of 'host:container[:opts]'."""
    options = ['--rm']
    for volume in kwargs.pop('volumes', ()):
        options += ['-v', volume]
    for name, value in sorted(kwargs.pop('env', {}).items()):
        options += ['-e', '%s=%s' % (name, value)]
    return podman('run', *(options + [image] + list(argv)), check=False, **kwargs)


def ok(proc):
    assert proc.returncode == 0, 'rc %d\nstdout:\n%s\nstderr:\n%s' % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout


def test_ee_has_the_collection_at_the_galaxy_version(ee_image):
    listing = json.loads(ok(ee_run(ee_image, 'ansible-galaxy', 'collection', 'list', 'omero.backup', '--format', 'json')))
    versions = [found['omero.backup']['version'] for found in listing.values() if 'omero.backup' in found]
    assert versions == [galaxy_version()]


def test_ee_documents_every_module(ee_image):
    out = ok(ee_run(ee_image, 'sh', '-c', 'ansible-doc -t module -l -j omero.backup && echo "----" && ansible-doc omero.backup.db_dump'))
    listing, doc = out.split('\n----\n', 1)
    shipped = sorted('omero.backup.' + name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, 'plugins', 'modules'))
                     if name.endswith('.py') and not name.startswith('_'))
    assert sorted(json.loads(listing)) == shipped
    assert 'login_password' in doc


def test_ee_runs_as_the_awx_user_with_the_controller_tools(ee_image):
    out = ok(ee_run(ee_image, 'sh', '-c', 'id -u; ssh -V 2>&1; sshpass -V | head -n1; ansible-runner --version'))
    lines = out.splitlines()
    assert lines[0] == str(EE_UID)
    assert lines[1].startswith('OpenSSH')
    assert lines[2].startswith('sshpass')
    assert re.match(r'^\d+\.\d+', lines[3]), 'ansible-runner --version printed %r' % lines[3]


def test_ee_runs_a_module_against_localhost(ee_image, tmp_path):
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'info.yml').write_text(textwrap.dedent('''\
        ---
        - name: Describe a host without OMERO
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Read the facts of a missing data dir and database
              omero.backup.info:
                datadir: /nonexistent/OMERO
                login_host: 127.0.0.1
                connect_timeout: 2
              register: facts
            - name: Check what was reported
              ansible.builtin.assert:
                that:
                  - not facts.changed
                  - not facts.datadir.exists
                  - not facts.postgres.reachable
        '''))
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(project), 0o755)
    out = ok(ee_run(ee_image, 'ansible-playbook', '/runner/project/info.yml', volumes=['%s:/runner/project:ro' % project],
                    env={'ANSIBLE_LOCALHOST_WARNING': '0', 'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0'}))
    assert 'failed=0' in out


@pytest.fixture(scope='module')
def database_host(tmp_path_factory):
    """A Debian 12 container with sshd and a throw-away PostgreSQL 15 (database omero, one table); removed afterwards.

    Yields its address and a directory holding the EE's ssh key and the pinned host key, owned by the EE's user."""
    keys = tmp_path_factory.mktemp('ee-ssh')
    with ssh_host('ee-db', str(keys)) as host:
        # Local connections trusted: the playbook connects as postgres over the socket, without a password.
        podman('exec', host['name'], 'sh', '-c',
               'install -d -o postgres -g postgres /run/postgresql /var/lib/postgresql/pgdata /var/backups/omero && '
               'runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/pgdata '
               '--auth-local=trust -U postgres >/dev/null && '
               'runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/pgdata -w -l /tmp/pg.log '
               '-o "-k /run/postgresql -c listen_addresses=" start >/dev/null && '
               'psql -qX -h /run/postgresql -U postgres -c "CREATE DATABASE omero" && '
               'psql -qX -h /run/postgresql -U postgres -d omero '
               '-c "CREATE TABLE image (id bigint PRIMARY KEY, name text)" '
               '-c "INSERT INTO image SELECT i, md5(i::text) FROM generate_series(1, 2000) AS i"')
        for path in (str(keys), host['key'], host['key'] + '.pub', host['known_hosts']):
            os.chown(path, EE_UID, 0)
        yield {'name': host['name'], 'address': host['address'], 'keys': str(keys)}


def test_ee_dumps_a_database_over_ssh_and_fetches_the_dump(ee_image, database_host, tmp_path):
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'inventory.ini').write_text(textwrap.dedent('''\
        [database]
        db ansible_host={address} ansible_user=root ansible_python_interpreter=/usr/bin/python3

        [database:vars]
        ansible_ssh_private_key_file=/runner/ssh/id_ed25519
        ansible_ssh_common_args='-o UserKnownHostsFile=/runner/ssh/known_hosts -o StrictHostKeyChecking=yes'
        ''').format(address=database_host['address']))
    (project / 'dump.yml').write_text(textwrap.dedent('''\
        ---
        - name: Dump the database and bring the dump to the controller
          hosts: database
          gather_facts: false
          tasks:
            - name: Dump the OMERO database
              omero.backup.db_dump:
                db: omero
                dest: /var/backups/omero
                login_unix_socket: /run/postgresql
                min_size: 1
              become: true
              become_user: postgres
              become_method: ansible.builtin.su
              register: dump

            - name: Make a private directory on the controller
              ansible.builtin.tempfile:
                state: directory
              delegate_to: localhost
              register: transfer

            - name: Fetch the dump into the EE
              ansible.builtin.fetch:
                src: "{{ dump.path }}"
                dest: "{{ transfer.path }}/"
                flat: true

            - name: Read the controller's copy
              ansible.builtin.stat:
                path: "{{ transfer.path }}/{{ dump.path | basename }}"
                checksum_algorithm: sha256
              delegate_to: localhost
              register: copy

            - name: Check the copy is the dump db_dump reported
              ansible.builtin.assert:
                that:
                  - dump.changed
                  - copy.stat.checksum == dump.sha256
                  - copy.stat.size == dump.size
        '''))
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(project), 0o755)
    out = ok(ee_run(ee_image, 'ansible-playbook', '-i', '/runner/project/inventory.ini', '/runner/project/dump.yml',
                    volumes=['%s:/runner/project:ro' % project, '%s:/runner/ssh:ro' % database_host['keys']]))
    assert 'failed=0' in out
    # The dump on the database host is a real one: pg_restore reads its table of contents.
    toc = podman('exec', database_host['name'], 'sh', '-c', 'pg_restore -l /var/backups/omero/omero.*.pg_dump').stdout
    assert 'TABLE public image' in toc
