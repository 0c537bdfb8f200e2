# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kill -9 of a whole run, as a crash or a power cut would do it, for the fault tests.

ansible-playbook's workers call setsid, so killing a process group misses the
module they run: the tree is read from the parent pids in /proc instead.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import signal


def process_tree(root):
    """root and every process below it (from /proc, through any session), parents first."""
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                # The command name may hold ')' and blanks: the fields after the last ')' are safe.
                fields = handle.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def cmdline(pid):
    """The process's command line as bytes ('' once it is gone)."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read()
    except OSError:
        return b''


def kill_tree(root):
    """SIGKILL root and all its descendants, frozen first with SIGSTOP so none finishes its work, reacts to the
    others' deaths or forks between the look and the kill; returns the pids, in the order they were found."""
    seen = []
    for _round in range(3):  # a process forked while the tree was read is caught by the next round
        for pid in process_tree(root):
            if pid not in seen:
                seen.append(pid)
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return seen
