// Package dbdump holds the PostgreSQL and MySQL/MariaDB sources: the dump
// a plan's postgres:/mysql: entry means (Expand, Spec), the dump itself
// streamed from the database's own tool (Start, Dump.Wait: a dump whose
// tool exited non-zero, was killed or was not read to its end is an
// error, never a short snapshot), its verification (Verify: pg_restore
// --list and a read of every block, or a restore into a scratch
// database), and the way back (Load: into a new database, or replacing
// the old one without ever leaving no complete copy).
//
// Everything above runs on the host, inside `holiday agent`: Handlers are
// its operations (db-expand, db-dump, db-verify, db-load), and the
// *OnHost functions are the control node's side of them.
//
// PostgreSQL's tools run as the OS user Spec.User (default postgres, peer
// authentication over the unix socket), dropped to from root with
// setgroups/setgid/setuid in the child; MySQL's as root over the unix
// socket. No password is ever passed: none appears in argv, logs or
// errors, and no PG*/MYSQL_* variable of the caller reaches a tool.
//
// MySQL dumps are made without --databases, so they hold no CREATE
// DATABASE or USE and load into any database name (a scratch check,
// rollback --into); holiday writes one comment line before mariadb-dump's
// output, "-- holiday-database: NAME CHARSET COLLATION", from which Load
// recreates the database. With stock tools: `mariadb -e 'CREATE DATABASE
// shop'; mariadb shop < shop.sql`.
//
// It imports internal/... only.
package dbdump
