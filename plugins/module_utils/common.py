# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small shared helpers: durations, checksums, time stamps and command runners."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import hashlib
import os
import re
import subprocess

_DURATION_UNITS = {
    's': 1,
    'm': 60,
    'h': 3600,
    'd': 86400,
    'w': 7 * 86400,
}
_DURATION_PART = re.compile(r'(\d+)\s*([smhdw])', re.IGNORECASE)
CHUNK = 1024 * 1024


class OmeroBackupError(Exception):
    """An error whose message is meant for the operator as it is."""


def parse_duration(text):
    """Seconds in a duration such as ``20h``, ``8W``, ``1d12h`` or ``90`` (seconds).

    The units are rdiff-backup's (s, m, h, D, W), case-insensitive, so one value
    can be handed to rdiff-backup and understood here alike.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return int(text)
    value = str(text).strip()
    if value.isdigit():
        return int(value)
    parts = _DURATION_PART.findall(value)
    if not parts or _DURATION_PART.sub('', value).strip():
        raise OmeroBackupError(
            "cannot read duration %r: use a number of seconds or units s, m, h, d, w (e.g. 20h, 8w, 1d12h)" % (text,))
    return sum(int(number) * _DURATION_UNITS[unit.lower()] for number, unit in parts)


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


def directory_usage(path):
    """Bytes used by the regular files below ``path`` (links not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def free_bytes(path):
    """Free bytes for an unprivileged writer on the filesystem holding ``path``
    (or its nearest existing parent, so a destination yet to be made can be checked)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


def report_results_as_given(module):
    """Stop AnsibleModule from overwriting size/mode/owner/state in a result that has
    ``path`` or ``dest`` with a stat() of that path: these modules report what they
    did (a dump's size, a log cleanup's state), not the attributes of a directory."""
    module.add_path_info = lambda kwargs: kwargs


def exit_with_result(module, result):
    """exit_json with the module's ``diff`` kept only when diff mode was asked for."""
    diff = result.pop('diff', None)
    if module._diff and diff is not None:
        result['diff'] = diff
    module.exit_json(**result)
