// The system SQLite (Debian: libsqlite3-dev), for the SQLite peer.
#include <sqlite3.h>

// SQLITE_STATIC is a cast macro Swift cannot import: bind borrowed bytes
// through these (SQLite does not copy them; they must outlive the step).
static inline int eventlog_bench_sqlite3_bind_text_static(sqlite3_stmt *statement, int index, const void *bytes, int count) {
    return sqlite3_bind_text(statement, index, (const char *)bytes, count, SQLITE_STATIC);
}
static inline int eventlog_bench_sqlite3_bind_blob_static(sqlite3_stmt *statement, int index, const void *bytes, int count) {
    return sqlite3_bind_blob(statement, index, bytes, count, SQLITE_STATIC);
}
