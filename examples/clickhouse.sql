-- ClickHouse: mirror RedDB collections through pgshim with the MaterializedPostgreSQL engine
-- (experimental in ClickHouse; enable it first). pgshim serves pgoutput from its publication.
-- Note: MaterializedPostgreSQL starts with an initial copy of each table, and pgshim keeps no
-- table snapshots (its status catalog lists the tables, the rows come only from the stream),
-- so the tables start empty and fill from the changes that follow.

SET allow_experimental_database_materialized_postgresql = 1;

CREATE DATABASE reddb
ENGINE = MaterializedPostgreSQL('pgshim:5433', 'reddb', 'postgres', 'change-me')
SETTINGS
    materialized_postgresql_tables_list = 'users,orders,sensors,events',
    materialized_postgresql_replication_slot = 'clickhouse',
    materialized_postgresql_schema = 'public';
