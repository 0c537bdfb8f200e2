# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Testinfra checks that both scenario hosts are what later scenarios build on."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

# Mirrors ssh_peer in molecule.yml's host_vars: the podman backend has no inventory.
SSH_PEER = {
    'omero-server-host': 'backup-store-host',
    'backup-store-host': 'omero-server-host',
}


def peer(host):
    return SSH_PEER[host.backend.get_hostname()]


def test_sshd_listens(host):
    assert host.socket('tcp://0.0.0.0:22').is_listening


def test_tools_the_backups_need(host):
    assert host.run_expect([0], 'rdiff-backup --version').stdout.startswith('rdiff-backup 2.')
    assert host.run_expect([0], 'pg_dump --version').stdout.split()[-1].startswith('15.')


def test_peer_reachable_over_ssh(host):
    result = host.run_expect([0], 'ssh -o BatchMode=yes %s hostname' % peer(host))
    assert result.stdout.strip() == peer(host)


def test_rdiff_backup_runs_on_peer_over_ssh(host):
    # rdiff-backup pushes to a remote store by starting itself there over ssh.
    result = host.run_expect([0], 'ssh -o BatchMode=yes %s rdiff-backup --version' % peer(host))
    assert result.stdout.startswith('rdiff-backup 2.')
