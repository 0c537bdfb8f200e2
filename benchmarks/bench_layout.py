# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The walk of layout_info (sources, sizes, links) against ``du -sb`` and ``find -type l`` over the same data dir.

    python benchmarks/bench_layout.py [--root /var/tmp/layout-bench] [--files 100000] [--rounds 3]

Writes a data dir of FILES files with omero_sandbox.many under ROOT (when it holds none), warms the page cache,
then alternates the three walks and prints their medians and the ratios; nothing is asserted.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tools'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))
# conftest puts an ansible_collections tree of this checkout on sys.path.
import conftest  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position
from omero_sandbox.many import write_many  # noqa: E402 pylint: disable=wrong-import-position
from ansible_collections.omero.backup.plugins.module_utils.layout.info import layout_info  # noqa: E402 pylint: disable=wrong-import-position


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='/var/tmp/layout-bench')
    parser.add_argument('--files', type=int, default=100000)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    datadir = os.path.join(args.root, 'OMERO')
    if not os.path.isdir(datadir):
        os.makedirs(args.root, exist_ok=True)
        write_many(datadir, args.files)
    walks = {
        'layout_info (sizes)': lambda: layout_info({'datadir': datadir}),
        'layout_info (no sizes)': lambda: layout_info({'datadir': datadir, 'sizes': False}),
        'du -sb': lambda: subprocess.run(['du', '-sb', datadir], stdout=subprocess.DEVNULL, check=True),
        'find -type l': lambda: subprocess.run(['find', datadir, '-type', 'l'], stdout=subprocess.DEVNULL, check=True),
    }
    times = dict((name, []) for name in walks)
    for walk in walks.values():
        walk()
    for _round in range(args.rounds):
        for name, walk in walks.items():
            times[name].append(timed(walk))
    medians = dict((name, statistics.median(values)) for name, values in times.items())
    for name, median in medians.items():
        print('%-24s %7.3f s  %.2fx du -sb' % (name, median, median / medians['du -sb']))


if __name__ == '__main__':
    main()
