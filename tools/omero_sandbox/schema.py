"""The part of the OMERO schema the collection touches, with real table and column names, and its rows.

Rows go in with COPY (fast for a million rows); the repo-protecting triggers are
created after the rows, as a full pg_restore does, so a data-only restore into
this schema fails the way it does on a real server.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import io

SCHEMA_VERSION = 'OMERO5.4'
SCHEMA_PATCH = 0
CHECKSUM_ALGORITHMS = ('Adler-32', 'CRC-32', 'MD5-128', 'Murmur3-32', 'Murmur3-128', 'SHA1-160', 'File-Size-64')
PERMISSIONS = -52  # rwra-- style bit mask, as on a read-annotate group
COPY_BATCH = 50000
EVENTLOG_PADDING_BATCH = 500000

# The columns every OMERO model object carries (its version and its "details": who, which group, which events).
DETAILS_COLUMNS = """version integer,
    creation_id bigint NOT NULL REFERENCES event (id),
    external_id bigint,
    group_id bigint NOT NULL REFERENCES experimentergroup (id),
    owner_id bigint NOT NULL REFERENCES experimenter (id),
    update_id bigint NOT NULL REFERENCES event (id)"""

TABLES_DDL = """
CREATE TABLE dbpatch (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    currentpatch integer NOT NULL,
    currentversion varchar(255) NOT NULL,
    finished timestamp without time zone,
    message varchar(255),
    previouspatch integer NOT NULL,
    previousversion varchar(255) NOT NULL,
    external_id bigint
);
CREATE TABLE configuration (
    name varchar(255) PRIMARY KEY,
    value text
);
CREATE TABLE experimentergroup (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    name varchar(255) NOT NULL UNIQUE,
    ldap boolean NOT NULL DEFAULT false,
    description text,
    version integer,
    external_id bigint
);
CREATE TABLE experimenter (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    omename varchar(255) NOT NULL UNIQUE,
    firstname varchar(255) NOT NULL,
    lastname varchar(255) NOT NULL,
    middlename varchar(255),
    email varchar(255),
    institution varchar(255),
    ldap boolean NOT NULL DEFAULT false,
    version integer,
    external_id bigint
);
CREATE TABLE session (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    uuid varchar(255) NOT NULL UNIQUE,
    owner bigint NOT NULL REFERENCES experimenter (id),
    started timestamp without time zone NOT NULL,
    closed timestamp without time zone,
    timetoidle bigint NOT NULL,
    timetolive bigint NOT NULL,
    defaulteventtype varchar(255) NOT NULL,
    useragent varchar(255),
    userip varchar(15),
    message text,
    version integer,
    external_id bigint
);
CREATE TABLE event (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    status varchar(255),
    time timestamp without time zone NOT NULL,
    containingevent bigint REFERENCES event (id),
    experimenter bigint NOT NULL REFERENCES experimenter (id),
    experimentergroup bigint NOT NULL REFERENCES experimentergroup (id),
    session bigint NOT NULL REFERENCES session (id),
    external_id bigint
);
CREATE TABLE eventlog (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    action varchar(255) NOT NULL,
    entityid bigint NOT NULL,
    entitytype varchar(255) NOT NULL,
    event bigint NOT NULL REFERENCES event (id),
    external_id bigint
);
CREATE TABLE checksumalgorithm (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    value varchar(255) NOT NULL UNIQUE,
    external_id bigint
);
CREATE TABLE originalfile (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    atime timestamp without time zone,
    ctime timestamp without time zone,
    mtime timestamp without time zone,
    hash varchar(255),
    hasher bigint REFERENCES checksumalgorithm (id),
    mimetype varchar(255) DEFAULT 'application/octet-stream',
    name varchar(255) NOT NULL,
    path text NOT NULL,
    repo varchar(36),
    size bigint,
    %(details)s
);
CREATE TABLE pixels (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    methodology varchar(255),
    sha1 varchar(255) NOT NULL,
    significantbits integer,
    sizec integer NOT NULL,
    sizet integer NOT NULL,
    sizex integer NOT NULL,
    sizey integer NOT NULL,
    sizez integer NOT NULL,
    dimensionorder varchar(255) NOT NULL DEFAULT 'XYZCT',
    pixelstype varchar(255) NOT NULL DEFAULT 'uint16',
    path text,
    name text,
    repo varchar(36),
    %(details)s
);
CREATE TABLE thumbnail (
    id bigint PRIMARY KEY,
    permissions bigint NOT NULL,
    mimetype varchar(255) NOT NULL,
    ref varchar(255),
    sizex integer NOT NULL,
    sizey integer NOT NULL,
    pixels bigint NOT NULL REFERENCES pixels (id),
    %(details)s
);
""" % {'details': DETAILS_COLUMNS}

SEQUENCE_TABLES = ('dbpatch', 'experimentergroup', 'experimenter', 'session', 'event', 'eventlog', 'checksumalgorithm',
                   'originalfile', 'pixels', 'thumbnail')

POST_DATA_DDL = """
CREATE UNIQUE INDEX originalfile_repo_path_index ON originalfile (repo, path, name) WHERE repo IS NOT NULL;
CREATE INDEX originalfile_mimetype_index ON originalfile (mimetype);
CREATE INDEX i_thumbnail_pixels ON thumbnail (pixels);
CREATE INDEX i_eventlog_event ON eventlog (event);

CREATE FUNCTION _protect_originalfile_repo_insert() RETURNS trigger AS $$
BEGIN
    IF NEW.repo IS NOT NULL AND current_setting('omero.repo_secret', true) IS DISTINCT FROM %(secret)s THEN
        RAISE EXCEPTION 'originalfile %% : only the server may set repo (no repository secret in this session)', NEW.id;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION _protect_originalfile_repo_update() RETURNS trigger AS $$
BEGIN
    IF OLD.repo IS DISTINCT FROM NEW.repo AND current_setting('omero.repo_secret', true) IS DISTINCT FROM %(secret)s THEN
        RAISE EXCEPTION 'originalfile %% : only the server may change repo (no repository secret in this session)', NEW.id;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER _protect_originalfile_repo_insert BEFORE INSERT ON originalfile
    FOR EACH ROW EXECUTE FUNCTION _protect_originalfile_repo_insert();
CREATE TRIGGER _protect_originalfile_repo_update BEFORE UPDATE ON originalfile
    FOR EACH ROW EXECUTE FUNCTION _protect_originalfile_repo_update();
"""


def _cell(value):
    if value is None:
        return '\\N'
    if isinstance(value, bool):
        return 't' if value else 'f'
    return str(value)


def copy_rows(cursor, table, columns, rows):
    """COPY an iterable of tuples into table, in batches so a million rows never sit in one string."""
    count = 0
    buffer = io.StringIO()
    statement = 'COPY %s (%s) FROM STDIN' % (table, ', '.join(columns))
    for row in rows:
        buffer.write('\t'.join(_cell(value) for value in row))
        buffer.write('\n')
        count += 1
        if count % COPY_BATCH == 0:
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
            buffer = io.StringIO()
    if buffer.tell():
        buffer.seek(0)
        cursor.copy_expert(statement, buffer)
    return count


def create_schema(conn):
    with conn.cursor() as cursor:
        cursor.execute(TABLES_DDL)
        for table in SEQUENCE_TABLES:
            cursor.execute('CREATE SEQUENCE seq_%s' % table)


def load_rows(conn, plan):
    """Insert every planned row; returns row counts per table."""
    counts = {}
    t0 = '2023-03-01 09:00:00'
    with conn.cursor() as cursor:
        counts['dbpatch'] = copy_rows(cursor, 'dbpatch', ('id', 'permissions', 'currentversion', 'currentpatch', 'previousversion',
                                                          'previouspatch', 'finished', 'message'), [
            (1, PERMISSIONS, 'OMERO5.3', 0, 'OMERO5.3', 0, '2018-01-01 00:00:00', 'Database ready.'),
            (2, PERMISSIONS, SCHEMA_VERSION, SCHEMA_PATCH, 'OMERO5.3', 0, '2019-01-01 00:00:00', 'Database ready.'),
        ])
        counts['configuration'] = copy_rows(cursor, 'configuration', ('name', 'value'), [
            ('omero.db.uuid', plan.db_uuid),
            ('omero.db.authority', 'export.openmicroscopy.org'),
        ])
        counts['experimentergroup'] = copy_rows(cursor, 'experimentergroup', ('id', 'permissions', 'name', 'version'),
                                                [(gid, PERMISSIONS, name, 0) for gid, name in plan.groups])
        counts['experimenter'] = copy_rows(cursor, 'experimenter', ('id', 'permissions', 'omename', 'firstname', 'lastname',
                                                                    'email', 'institution', 'version'),
                                           [(eid, PERMISSIONS, omename, first, last, '%s@example.org' % omename, 'Sandbox Institute', 0)
                                            for eid, omename, first, last in plan.experimenters])
        counts['session'] = copy_rows(cursor, 'session', ('id', 'permissions', 'uuid', 'owner', 'started', 'timetoidle', 'timetolive',
                                                          'defaulteventtype', 'useragent', 'userip', 'version'),
                                      [(sid, PERMISSIONS, suuid, owner, started, 600000, 0, 'User', 'OMERO.py', '127.0.0.1', 0)
                                       for sid, suuid, owner, started in plan.sessions])
        counts['event'] = copy_rows(cursor, 'event', ('id', 'permissions', 'status', 'time', 'experimenter', 'experimentergroup',
                                                      'session'),
                                    [(eid, PERMISSIONS, None, when, exp, grp, sess) for eid, exp, grp, sess, when in plan.events])
        counts['eventlog'] = copy_rows(cursor, 'eventlog', ('id', 'permissions', 'action', 'entityid', 'entitytype', 'event'),
                                       [(eid, PERMISSIONS, 'INSERT', eid, 'ome.model.meta.Event', eid) for eid, _e, _g, _s, _w in plan.events])

        # OMERO's enumeration, in the order the OMERO 5 schema creates it (File-Size-64 came with 5.1).
        counts['checksumalgorithm'] = copy_rows(cursor, 'checksumalgorithm', ('id', 'permissions', 'value'),
                                                [(index + 1, PERMISSIONS, name) for index, name in enumerate(CHECKSUM_ALGORITHMS)])
        hasher_ids = dict((name, index + 1) for index, name in enumerate(CHECKSUM_ALGORITHMS))

        def file_row(row):
            return (row.id, PERMISSIONS, t0, t0, t0, row.hash, hasher_ids.get(row.hasher), row.mimetype, row.name, row.path, row.repo,
                    row.size, 0, plan.event_for(row.id), 3 if row.owner >= 2 else 0, row.owner, plan.event_for(row.id))

        def all_file_rows():
            for row in plan.repository_rows:
                yield file_row(row)
            for row in plan.files:
                yield file_row(row)
            for row in plan.managed_rows:
                yield file_row(row)

        counts['originalfile'] = copy_rows(cursor, 'originalfile', ('id', 'permissions', 'atime', 'ctime', 'mtime', 'hash', 'hasher', 'mimetype',
                                                                    'name', 'path', 'repo', 'size', 'version', 'creation_id',
                                                                    'group_id', 'owner_id', 'update_id'), all_file_rows())
        counts['pixels'] = copy_rows(cursor, 'pixels', ('id', 'permissions', 'sha1', 'significantbits', 'sizec', 'sizet', 'sizex', 'sizey',
                                                        'sizez', 'path', 'name', 'repo', 'version', 'creation_id', 'group_id', 'owner_id',
                                                        'update_id'),
                                     ((p[0], PERMISSIONS, p[3], 16, 1, 1, p[1], p[2], 1, p[4], p[5], p[6], 0, plan.event_for(p[0]), 3, p[7],
                                       plan.event_for(p[0])) for p in plan.pixels))
        counts['thumbnail'] = copy_rows(cursor, 'thumbnail', ('id', 'permissions', 'mimetype', 'sizex', 'sizey', 'pixels', 'version',
                                                              'creation_id', 'group_id', 'owner_id', 'update_id'),
                                        ((t[0], PERMISSIONS, 'image/jpeg', 96, 96, t[1], 0, plan.event_for(t[0]), 3, t[2],
                                          plan.event_for(t[0])) for t in plan.thumbnails))
    return counts


def finish_schema(conn, repo_secret):
    with conn.cursor() as cursor:
        cursor.execute(POST_DATA_DDL, {'secret': repo_secret})
        for table in SEQUENCE_TABLES:
            cursor.execute("SELECT setval('seq_%s', COALESCE((SELECT max(id) FROM %s), 0) + 1, false)" % (table, table))


def pad_eventlog(conn, target_bytes, progress=None):
    """Grow eventlog (the table that is huge on real servers) until the database reaches target_bytes."""
    with conn.cursor() as cursor:
        cursor.execute('SELECT max(id) FROM event')  # event ids are 1..N
        event_count = cursor.fetchone()[0]
        cursor.execute('SELECT pg_database_size(current_database())')
        size = cursor.fetchone()[0]
        while size < target_bytes:
            cursor.execute('SELECT COALESCE(max(id), 0) FROM eventlog')
            start = cursor.fetchone()[0] + 1
            # ~130 bytes a row with its index; do not overshoot by more than a batch
            batch = max(10000, min(EVENTLOG_PADDING_BATCH, (target_bytes - size) // 130 + 1))
            cursor.execute(
                "INSERT INTO eventlog (id, permissions, action, entityid, entitytype, event) "
                "SELECT g, %s, (ARRAY['INSERT','UPDATE','DELETE','REINDEX'])[1 + g %% 4], g * 7 %% 1000003, "
                "(ARRAY['ome.model.core.Image','ome.model.core.Pixels','ome.model.core.OriginalFile',"
                "'ome.model.annotations.MapAnnotation'])[1 + g %% 4], 1 + g %% %s "
                "FROM generate_series(%s, %s) AS g",
                (PERMISSIONS, event_count, start, start + batch - 1))
            conn.commit()
            cursor.execute('SELECT pg_database_size(current_database())')
            size = cursor.fetchone()[0]
            if progress:
                progress('database %d MB of %d MB' % (size // 2 ** 20, target_bytes // 2 ** 20))
        cursor.execute("SELECT setval('seq_eventlog', COALESCE((SELECT max(id) FROM eventlog), 0) + 1, false)")
    conn.commit()
    return size
