"""DuckDB's side of `sift bench --suite state` (run by the bench, not by hand).

Copies the events a Sift workspace database stores (contact number, type,
instant and the `amount` property) into a DuckDB database file, then answers
the GROUP BY that a behavioural segment such as
`performed purchase where amount > 150 at least 2 times` asks, from that file
with a fresh connection, several times. Prints one JSON object.

Arguments: SIFT_WORKSPACE_DB WORK_DIR EVENT_TYPE MIN_AMOUNT MIN_COUNT RUNS
"""

import csv
import json
import os
import sqlite3
import sys
import time

import duckdb


def main() -> None:
    source, work, event_type = sys.argv[1], sys.argv[2], sys.argv[3]
    min_amount, min_count, runs = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])

    started = time.monotonic()
    csv_path = os.path.join(work, "events.csv")
    sqlite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    rows = 0
    with open(csv_path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["contact_no", "type", "at", "amount"])
        query = "SELECT contact_no, type, at, json_extract(properties, '$.amount') FROM events"
        for row in sqlite.execute(query):
            writer.writerow(row)
            rows += 1
    sqlite.close()
    exported_s = time.monotonic() - started

    started = time.monotonic()
    db_path = os.path.join(work, "events.duckdb")
    db = duckdb.connect(db_path)
    db.execute(
        "CREATE TABLE events AS SELECT * FROM read_csv(?, header = true, columns = "
        "{'contact_no': 'UINTEGER', 'type': 'VARCHAR', 'at': 'BIGINT', 'amount': 'DOUBLE'})",
        [csv_path],
    )
    db.close()
    os.remove(csv_path)
    loaded_s = time.monotonic() - started

    group_by = (
        "SELECT count(*) FROM (SELECT contact_no FROM events "
        "WHERE type = ? AND amount > ? GROUP BY contact_no HAVING count(*) >= ?)"
    )
    times_ms = []
    size = None
    for _ in range(runs):
        # A fresh connection each time: the first query of each reads the file.
        db = duckdb.connect(db_path, read_only=True)
        started = time.monotonic()
        size = db.execute(group_by, [event_type, min_amount, min_count]).fetchone()[0]
        times_ms.append((time.monotonic() - started) * 1000.0)
        db.close()
    print(
        json.dumps(
            {
                "duckdb_version": duckdb.__version__,
                "threads": os.cpu_count(),
                "events": rows,
                "export_s": exported_s,
                "load_s": loaded_s,
                "query": group_by,
                "query_ms": times_ms,
                "size": size,
                "database_bytes": os.path.getsize(db_path),
            }
        )
    )


if __name__ == "__main__":
    main()
