# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):
    # PostgreSQL connection options shared by every database-facing module.
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - Takes precedence over O(login_unix_socket), which is used only when this is empty.
      - When neither is set, libpq's default local socket is used.
    type: str
    aliases: [host]
  port:
    description:
      - Port of the PostgreSQL server.
    type: int
    default: 5432
    aliases: [login_port]
  login_user:
    description:
      - PostgreSQL role to connect as. Dumping and restoring need a superuser or the database owner.
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user).
      - Passed to psycopg2 and, for the client tools, in the C(PGPASSWORD) environment variable; it never
        appears on a command line or in the module's output.
      - Leave unset to use peer/trust authentication or a C(~/.pgpass) file of the remote user.
    type: str
  login_unix_socket:
    description:
      - Directory holding the server's Unix-domain socket; used when O(login_host) is empty.
    type: path
  connect_timeout:
    description:
      - Seconds to wait for a connection before failing.
    type: int
    default: 10
requirements:
  - psycopg2 on the managed host.
  - The PostgreSQL client tools (C(pg_dump), C(pg_restore), C(psql)) on the managed host for modules that run them.
'''
