/*
 * The libpq handle behind a PostgreSQL connection, for src/tsdb's bulk
 * write path only: it sends its batches as binary array parameters
 * (PQexecParams with paramFormats = 1), which db.h's text parameters
 * cannot express. Everything else goes through db.h, which stays
 * portable. Nothing but src/db and src/tsdb includes this.
 */
#ifndef ARGUS_DB_PG_H
#define ARGUS_DB_PG_H

#include "db.h"

#include <libpq-fe.h>

/* The connection's libpq handle, borrowed for as long as the caller holds
 * c (a reconnect at the next acquire may replace it); NULL unless c is a
 * PostgreSQL connection. Do not leave results pending, change session
 * settings or end transactions behind db.h's back with it. */
PGconn *db__pg_handle(struct db_conn *c);

/* Checks a result of PQexecParams on c's handle as db_step would: CORE_OK
 * for a command or rows, otherwise records the error for db_errmsg, logs
 * it and maps its SQLSTATE (CORE_ECONFLICT, CORE_ECONSTRAINT, CORE_EBUSY,
 * CORE_EDB). res may be NULL (out of memory, connection lost); it is not
 * cleared. */
int db__pg_check(struct db_conn *c, const PGresult *res);

#endif
