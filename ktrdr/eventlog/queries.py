"""Named SQL of the event log (psycopg placeholders, never string formatting)."""

from __future__ import annotations

from typing import LiteralString

# transaction_id is selected as text (psycopg has no xid8 loader); every ORDER BY
# names events.transaction_id so that it sorts the xid8, not the text ('1000' < '999').
EVENT_COLUMNS: LiteralString = (
    "global_position, transaction_id::text, stream_id, stream_version, event_id,"
    " event_type, schema_version, data, metadata, recorded_at"
)

# One statement: reading the head and inserting happen in the statement's own snapshot,
# and the transaction id is assigned by the insert, after the read — so an event can
# never get an older transaction id than the one it builds on. In a transaction that
# already holds an id (own_xid) the guard refuses instead. A refused append returns no row.
_GUARDED_INSERT: LiteralString = """
WITH head AS (
    SELECT coalesce(last.stream_version, 0) AS version,
           last.transaction_id AS last_xid,
           pg_current_xact_id_if_assigned() AS own_xid
    FROM (VALUES (1)) AS one
    LEFT JOIN LATERAL (
        SELECT stream_version, transaction_id FROM events
        WHERE stream_id = %(stream_id)s ORDER BY stream_version DESC LIMIT 1
    ) AS last ON true
), guard AS (
    SELECT version FROM head
    WHERE (%(expected)s = -1
           OR (%(expected)s = -2 AND version > 0)
           OR version = %(expected)s)
      AND (own_xid IS NULL OR last_xid IS NULL OR own_xid > last_xid)
)
INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version,
                    data, metadata)
"""

_RETURNING: LiteralString = (
    "RETURNING global_position, transaction_id::text, stream_version, recorded_at"
)

# A batch travels as one JSON text parameter (psycopg would escape five text arrays
# element by element).
APPEND: LiteralString = (
    _GUARDED_INSERT
    + """SELECT %(stream_id)s, guard.version + e.ord, (e.ev->>'event_id')::uuid,
       e.ev->>'event_type', (e.ev->>'schema_version')::int, e.ev->'data', e.ev->'metadata'
FROM guard, jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS e(ev, ord)
"""
    + _RETURNING
)

# Most appends carry one event: as plain parameters it skips parsing and taking apart a
# one-element jsonb array: 15-30 µs less backend CPU per append, where a one-row INSERT
# and its commit take 120-180 µs. JSON travels as text cast here, as in APPEND: the Jsonb
# wrapper costs psycopg ~10 µs more per append than a str.
APPEND_ONE: LiteralString = (
    _GUARDED_INSERT
    + """SELECT %(stream_id)s, guard.version + 1, %(event_id)s, %(event_type)s,
       %(schema_version)s, %(data)s::jsonb, %(metadata)s::jsonb
FROM guard
"""
    + _RETURNING
)

STREAM_HEAD: LiteralString = """
SELECT coalesce(max(stream_version), 0),
       coalesce(pg_current_xact_id_if_assigned() < (
           SELECT transaction_id FROM events WHERE stream_id = %(stream_id)s
           ORDER BY stream_version DESC LIMIT 1), false)
FROM events WHERE stream_id = %(stream_id)s
"""

EVENTS_BY_ID: LiteralString = (
    "SELECT " + EVENT_COLUMNS + " FROM events WHERE event_id = ANY(%(event_ids)s::uuid[])"
    " ORDER BY stream_id, stream_version"
)

READ_STREAM: LiteralString = (
    "SELECT " + EVENT_COLUMNS + " FROM events"
    " WHERE stream_id = %(stream_id)s AND stream_version >= %(from_version)s"
    " ORDER BY stream_version"
)

# Rows of transactions below the snapshot's xmin are final: every transaction
# that could still commit has a larger id, so it sorts after the cursor.
READ_ALL: LiteralString = (
    "SELECT " + EVENT_COLUMNS + " FROM events"
    " WHERE (transaction_id, global_position) > (%(tx)s::text::xid8, %(pos)s)"
    "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY events.transaction_id, events.global_position LIMIT %(limit)s"
)

# For replays bounded by a known position, in a snapshot that already excludes
# what is still in flight (rebuild under lock, verify in repeatable read).
READ_RANGE: LiteralString = (
    "SELECT " + EVENT_COLUMNS + " FROM events"
    " WHERE (transaction_id, global_position) > (%(tx)s::text::xid8, %(pos)s)"
    "   AND (transaction_id, global_position) <= (%(until_tx)s::text::xid8, %(until_pos)s)"
    " ORDER BY events.transaction_id, events.global_position LIMIT %(limit)s"
)

LAST_POSITION: LiteralString = (
    "SELECT transaction_id::text, global_position FROM events"
    " ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
)

LAST_SAFE_POSITION: LiteralString = (
    "SELECT transaction_id::text, global_position FROM events"
    " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
)

COUNT_EVENTS: LiteralString = "SELECT count(*) FROM events"

LISTEN: LiteralString = "LISTEN ktrdr_events"
# Sent after an append commits, outside its transaction: a NOTIFY inside it would take
# PostgreSQL's cluster-wide notify lock through the commit's flush and serialise writers.
NOTIFY: LiteralString = "SELECT pg_notify('ktrdr_events', '')"
