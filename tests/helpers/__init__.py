# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test harness shared by every test: run modules and playbooks through the real ansible CLIs."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .ansible import (AnsibleRunError, ansible_env, collections_path, run_module, run_playbook, task_result,
                      REPO_ROOT, VENV_BIN)
from .sandbox import connection_args, free_tcp_port, psycopg2_connect, query

__all__ = ['AnsibleRunError', 'ansible_env', 'collections_path', 'run_module', 'run_playbook', 'task_result', 'REPO_ROOT', 'VENV_BIN',
           'connection_args', 'free_tcp_port', 'psycopg2_connect', 'query']
