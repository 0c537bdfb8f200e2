# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's two exceptions; glue.py is the only code that turns them into a task result.

They sit in base/ (the lowest layer) so that every layer may raise them (a lock helper in base/, a step, an
engine) without importing the Ansible glue; glue.py re-exports them for modules.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class OmeroBackupError(Exception):
    """An error whose message is meant for the operator as it is."""


class OperationFailed(OmeroBackupError):
    """A step failed after it had found or done something: ``result`` is what the task reports with the failure
    (what changed, what was left, the lock it held), so the operator sees the state it left.

    The one exception carrying a result; a step's own error class (DbDumpError, CleanseRefused, ...) is a
    subclass and adds nothing but its name.
    """

    def __init__(self, message, result=None):
        super(OperationFailed, self).__init__(message)
        self.result = result if result is not None else {}
