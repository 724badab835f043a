// The system RocksDB's C API (Debian: librocksdb-dev), for the RocksDB peer.
#include <stddef.h>
#include <stdint.h>
#include <rocksdb/c.h>
