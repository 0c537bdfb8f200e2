# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checksum proof: files read back and compared with the hash OMERO stored for them (docs/verify.md).

``algorithms`` (OMERO's checksum algorithms, rendered as OMERO renders them), ``state`` (where a budgeted proof
stopped, so the next run goes on from there), ``run`` (the step: options, rows, hashing on every core, results),
``report`` (the 0600 report file and the metrics).
"""
