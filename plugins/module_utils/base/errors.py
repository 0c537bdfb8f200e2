# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The error whose message is meant for the operator as it is (every layer raises it; the glue reports it)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class OmeroBackupError(Exception):
    """An error whose message is meant for the operator as it is."""
