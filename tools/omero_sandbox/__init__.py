"""A faithful miniature OMERO.server (PostgreSQL cluster, OMERODIR, data dir) for demos, tests and benchmarks.

    from omero_sandbox import build, destroy
    description = build('/var/tmp/sandbox', objects=60, orphans=12, seed=1)
    ...
    destroy('/var/tmp/sandbox')
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .builder import build, describe, destroy, start, stop
from .errors import SandboxError

__all__ = ['build', 'describe', 'destroy', 'start', 'stop', 'SandboxError']
