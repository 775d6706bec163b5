-- ClickHouse: mirror RedDB collections through pgshim with the MaterializedPostgreSQL engine
-- (experimental in ClickHouse; enable it first). pgshim serves pgoutput from its publication.
-- Not exercised by pgshim's tests (no ClickHouse here): MaterializedPostgreSQL starts with an
-- initial copy of each table through its own catalog queries, which pgshim may not all answer.

SET allow_experimental_database_materialized_postgresql = 1;

CREATE DATABASE reddb
ENGINE = MaterializedPostgreSQL('pgshim:5433', 'reddb', 'postgres', 'change-me')
SETTINGS
    materialized_postgresql_tables_list = 'users,orders,sensors,events',
    materialized_postgresql_replication_slot = 'clickhouse',
    materialized_postgresql_schema = 'public';
