"""python -m omero_sandbox build ROOT [--objects N] [--orphans N] [--seed S] [--port P] [--no-omero-cli] | start|stop|destroy|describe ROOT"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import sys
import time

from . import build, describe, destroy, start, stop
from .errors import SandboxError


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m omero_sandbox', description='Build and manage a synthetic OMERO.server sandbox.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    build_parser = commands.add_parser('build', help='build a sandbox under ROOT (absent or empty) and print its JSON description')
    build_parser.add_argument('root', metavar='ROOT')
    build_parser.add_argument('--objects', type=int, default=60, help='about how many data-dir objects to make (default 60)')
    build_parser.add_argument('--orphans', type=int, default=12, help='files without a database row to inject (default 12)')
    build_parser.add_argument('--seed', type=int, default=0, help='same seed, same sandbox (default 0)')
    build_parser.add_argument('--port', type=int, default=None, help='PostgreSQL port (default: a free one)')
    build_parser.add_argument('--db-size-mb', type=int, default=0, help='pad the database (eventlog) to about this size')
    build_parser.add_argument('--checksums', dest='checksums', action='store_true', default=None,
                              help='record sha256 of every data-dir file even above 100000 objects')
    build_parser.add_argument('--no-checksums', dest='checksums', action='store_false')
    build_parser.add_argument('--no-omero-cli', dest='omero_cli', action='store_false',
                              help='write config.xml directly instead of through the real omero CLI')
    build_parser.add_argument('--omero-user', default='omero-server')
    build_parser.add_argument('--pg-bindir', default=None)
    build_parser.add_argument('--venv', default=None, help='venv holding bin/omero (default /var/cache/omero-backup/venv)')
    build_parser.add_argument('--quiet', action='store_true', help='no progress lines on stderr')
    build_parser.add_argument('--summary', action='store_true', help='print the description without checksums')
    for name, text in (('start', 'start the PostgreSQL cluster'), ('stop', 'stop the PostgreSQL cluster'),
                       ('destroy', 'stop the cluster and remove ROOT'), ('describe', 'print the JSON description')):
        sub = commands.add_parser(name, help=text)
        sub.add_argument('root', metavar='ROOT')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.time()

    def progress(message):
        if not args.quiet:
            sys.stderr.write('[sandbox %6.1fs] %s\n' % (time.time() - started, message))

    try:
        if args.command == 'build':
            result = build(args.root, objects=args.objects, orphans=args.orphans, seed=args.seed, port=args.port,
                           omero_cli=args.omero_cli, db_size_mb=args.db_size_mb, checksums=args.checksums,
                           omero_user=args.omero_user, pg_bindir=args.pg_bindir, venv=args.venv, progress=progress)
            if args.summary:
                result = dict(result, checksums='(%d entries)' % len(result['checksums']) if result['checksums'] else None)
        elif args.command == 'destroy':
            destroy(args.root)
            result = {'root': args.root, 'destroyed': True}
        else:
            result = {'start': start, 'stop': stop, 'describe': describe}[args.command](args.root)
    except SandboxError as exc:
        sys.stderr.write('omero_sandbox: error: %s\n' % exc)
        return 1
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
