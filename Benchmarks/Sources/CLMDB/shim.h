// The system LMDB (Debian: liblmdb-dev), for the LMDB peer.
#include <lmdb.h>
