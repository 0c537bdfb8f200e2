"""Build, start, stop, describe and destroy a sandbox; a failed build leaves nothing behind."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import secrets

from . import schema
from .cluster import Cluster
from .datadir import write_datadir
from .errors import SandboxError
from .layout import add_layout
from .omerodir import LOG_NAMES, write_omerodir
from .plan import make_plan
from .system import (check_disk, check_port_free, chown_tree, find_omero_command, find_pg_bindir, free_port,
                     make_traversable, rmtree, service_user)

DESCRIPTION_FILE = 'sandbox.json'
MARKER_FILE = '.omero-sandbox'
CHECKSUM_LIMIT = 100000  # above this many objects checksums are skipped unless asked for
DB_NAME = 'omero'
DB_OWNER = 'omero'


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise SandboxError('%s must be an integer, got %r' % (name, value))
    if value < minimum:
        raise SandboxError('%s must be >= %d, got %d' % (name, minimum, value))


def estimate_needs(objects, orphans, db_size_mb):
    """Bytes and inodes a build needs (with headroom): small files cost a block each."""
    entries = int(objects * 1.3) + orphans + 200
    data_bytes = entries * (4096 + 1024)
    db_bytes = 64 * 2 ** 20 + objects * 600 + int(db_size_mb * 1.15 * 2 ** 20)
    wal_and_logs = 300 * 2 ** 20
    return data_bytes + db_bytes + wal_and_logs, entries + 5000


def build(root, objects=60, orphans=12, seed=0, port=None, omero_cli=True, db_size_mb=0, checksums=None,
          omero_user='omero-server', postgres_user='postgres', pg_bindir=None, venv=None, progress=None, layout=False):
    """Build a sandbox under root (absent or empty); returns its description (also saved as ROOT/sandbox.json).

    ``layout``: also the parts of an install outside the data dir (layout.py: a symlinked volume, managed.dir
    elsewhere, a certs dir, an OMERO.web OMERODIR), under the description's ``layout``."""
    _check_count('objects', objects, 1)
    _check_count('orphans', orphans, 0)
    _check_count('seed', seed, 0)
    _check_count('db_size_mb', db_size_mb, 0)
    if port is not None:
        _check_count('port', port, 1)
        if port > 65535:
            raise SandboxError('port must be <= 65535, got %d' % port)
    root = os.path.abspath(root)
    if os.path.lexists(root) and (not os.path.isdir(root) or os.listdir(root)):
        raise SandboxError('%s exists and is not an empty directory; choose another ROOT or destroy the old sandbox first' % root)
    if len(os.path.join(root, 'pgsock', '.s.PGSQL.65535')) > 107:
        raise SandboxError('%s is too deep: the PostgreSQL socket path under it would exceed the 107-byte Unix socket limit' % root)
    bindir = find_pg_bindir(pg_bindir)
    omero_user = service_user(omero_user)
    postgres_user = service_user(postgres_user)
    omero_command = find_omero_command(venv)
    if omero_cli and not omero_command:
        raise SandboxError('the omero CLI was not found (looked for bin/omero in %s); run scripts/bootstrap.sh or pass '
                           '--no-omero-cli' % (venv or os.environ.get('OMERO_BACKUP_VENV') or '/var/cache/omero-backup/venv'))
    if port is None:
        port = free_port()
    check_port_free(port)
    needed_bytes, needed_inodes = estimate_needs(objects, orphans, db_size_mb)
    check_disk(root, needed_bytes, needed_inodes)
    keep_checksums = checksums if checksums is not None else objects <= CHECKSUM_LIMIT

    created_root = not os.path.exists(root)
    cluster = Cluster(root, port, bindir, postgres_user)
    try:
        if created_root:
            os.makedirs(root)
        os.chmod(root, 0o755)
        make_traversable(root)
        with open(os.path.join(root, MARKER_FILE), 'w') as handle:
            handle.write('omero_sandbox\n')
        description = _build(root, cluster, objects, orphans, seed, db_size_mb, keep_checksums, omero_cli, omero_command,
                             omero_user, progress or (lambda message: None))
        if layout:
            add_layout(description, omero_command if omero_cli else None, omero_user)
            _save_description(root, description)
        return description
    except BaseException:
        _remove_sandbox(root, cluster, remove_root=created_root)
        raise


def _build(root, cluster, objects, orphans, seed, db_size_mb, keep_checksums, omero_cli, omero_command, omero_user, progress):
    datadir = os.path.join(root, 'OMERO')
    plan = make_plan(objects, orphans, seed, datadir)
    progress('plan ready')
    superuser_password = secrets.token_hex(16)
    owner_password = secrets.token_hex(16)
    repo_secret = secrets.token_hex(16)

    cluster.initdb(superuser_password)
    cluster.start()
    cluster.create_owner_and_database(DB_OWNER, owner_password, DB_NAME)
    progress('cluster started on port %d' % cluster.port)
    conn = cluster.connect(DB_NAME, user=DB_OWNER)
    try:
        schema.create_schema(conn)
        row_counts = schema.load_rows(conn, plan)
        schema.finish_schema(conn, repo_secret)
        conn.commit()
        progress('database rows loaded')
        if db_size_mb:
            schema.pad_eventlog(conn, db_size_mb * 2 ** 20, progress)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute('ANALYZE')
            cursor.execute('SELECT count(*) FROM eventlog')
            row_counts['eventlog'] = cursor.fetchone()[0]
            cursor.execute('SELECT pg_database_size(current_database())')
            db_size = cursor.fetchone()[0]
    finally:
        conn.close()

    facts = write_datadir(root, datadir, plan, keep_checksums, progress)
    chown_tree(datadir, omero_user)
    if facts['symlinks']:
        chown_tree(os.path.join(root, 'inplace-source'), omero_user)

    description = {
        'root': root,
        'seed': seed,
        'objects': objects,
        'postgres': {
            'host': cluster.sockdir,
            'tcp_host': '127.0.0.1',
            'port': cluster.port,
            'superuser': 'postgres',
            'superuser_password': superuser_password,
            'dbname': DB_NAME,
            'owner': DB_OWNER,
            'owner_password': owner_password,
            'bindir': cluster.bindir,
            'pgdata': cluster.pgdata,
            'logfile': cluster.logfile,
            'os_user': cluster.user,
            'repo_secret': repo_secret,
        },
        'omerodir': os.path.join(root, 'OMERO.server'),
        'omero_command': os.path.join(root, 'OMERO.server', 'bin', 'omero') if omero_command else None,
        'omero_user': omero_user,
        'config_dir': os.path.join(root, 'config'),
        'datadir': datadir,
        'db_uuid': plan.db_uuid,
        'schema': {'version': schema.SCHEMA_VERSION, 'patch': schema.SCHEMA_PATCH},
        'repositories': {'datadir': plan.data_repo_uuid, 'managed': plan.managed_repo_uuid},
        'log_dir': os.path.join(root, 'OMERO.server', 'var', 'log'),
        'logs': list(LOG_NAMES),
    }
    description['omero_config'] = write_omerodir(root, description, omero_command, omero_cli, omero_user)
    progress('OMERODIR written')

    description['counts'] = {
        'pixels': len(plan.pixels),
        'pyramids': len(facts['pyramids']),
        'pyramids_in_progress': len(plan.pyramids_in_progress),
        'thumbnails': len(plan.thumbnails),
        'files': len(plan.files),
        'filesets': len(plan.filesets),
        'managed_files': sum(len(f['files']) for f in plan.filesets),
        'import_logs': len(plan.filesets),
        'managed_dirs': sum(1 for r in plan.managed_rows if r.mimetype == 'Directory'),
        'orphans': len(facts['orphans']),
        'kept_unknown': len(facts['kept_unknown']),
        'bfmemos': facts['bfmemos'],
        'datadir_files': facts['files_written'] + len(facts['symlinks']),
        'datadir_dirs': facts['directories'],
        'datadir_bytes': facts['bytes_written'],
        'db_rows': row_counts,
        'db_size_bytes': db_size,
    }
    for key in ('orphans', 'kept_unknown', 'symlinks', 'pyramids', 'pyramids_in_progress', 'checksums'):
        description[key] = facts[key]
    _save_description(root, description)
    progress('sandbox ready at %s' % root)
    return description


def _save_description(root, description):
    path = os.path.join(root, DESCRIPTION_FILE)
    temp = path + '.tmp'
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(description, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(temp, path)


def describe(root):
    path = os.path.join(os.path.abspath(root), DESCRIPTION_FILE)
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, IOError) as exc:
        raise SandboxError('%s is not a sandbox (cannot read %s: %s)' % (root, path, exc))


def _cluster_for(description):
    postgres = description['postgres']
    return Cluster(description['root'], postgres['port'], postgres['bindir'], postgres['os_user'])


def start(root):
    description = describe(root)
    _cluster_for(description).start()
    return description


def stop(root):
    description = describe(root)
    _cluster_for(description).stop()
    return description


def destroy(root):
    """Stop the cluster and remove ROOT; refuses directories the sandbox did not make."""
    root = os.path.abspath(root)
    if not os.path.exists(root):
        return
    if not os.path.exists(os.path.join(root, MARKER_FILE)):
        raise SandboxError('%s has no %s marker: not removing a directory the sandbox did not build' % (root, MARKER_FILE))
    cluster = None
    if os.path.exists(os.path.join(root, DESCRIPTION_FILE)):
        cluster = _cluster_for(describe(root))
    elif os.path.isdir(os.path.join(root, 'pgdata')):
        cluster = Cluster(root, 0, find_pg_bindir(), service_user('postgres'))
    _remove_sandbox(root, cluster, remove_root=True)


def _remove_sandbox(root, cluster, remove_root):
    if cluster is not None:
        try:
            cluster.stop()
        except SandboxError:
            pass  # removal must go on; a stuck postmaster loses its data dir below and exits
    if remove_root:
        rmtree(root)
    elif os.path.isdir(root):
        for name in os.listdir(root):
            rmtree(os.path.join(root, name))
