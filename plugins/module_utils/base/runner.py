# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command runners (Ansible's and plain subprocess), checksums and time stamps."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import hashlib
import os
import subprocess

CHUNK = 1024 * 1024


def sha256_file(path, chunk=CHUNK):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_time(moment=None):
    moment = moment or utc_now()
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def file_timestamp(moment=None):
    """A sortable UTC stamp safe in file names on every filesystem (no colons)."""
    moment = moment or utc_now()
    return moment.strftime('%Y-%m-%dT%H%M%SZ')


def module_runner(module):
    """Runner over AnsibleModule.run_command: argv list, secrets only in the environment."""
    def run(argv, env=None, data=None, cwd=None):
        return module.run_command(list(argv), environ_update=env or {}, data=data, cwd=cwd,
                                  binary_data=False, check_rc=False)
    return run


def subprocess_runner(argv, env=None, data=None, cwd=None):
    """Runner for code used without Ansible (unit tests, the sandbox, benchmarks)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    completed = subprocess.run(list(argv), input=data, cwd=cwd, env=full_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, check=False)
    return completed.returncode, completed.stdout, completed.stderr
