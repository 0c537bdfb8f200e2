# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole OMERO layout in every backup set (docs/layout.md).

``discover`` (the sources of an install: the data dir, ``omero.managed.dir`` outside it, directories symlinked
into it, the certificates directory of omero-certificates, declared extra sources; their sizes; links that point
outside every source), ``match`` (a set's sources against the layout of the host it is restored to, through
``omero_restore_path_map``), ``restore`` (one extra source restored through the data dir engine, and the links
re-pointed at their mapped targets).
"""
