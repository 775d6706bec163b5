-- A PostgreSQL 15 subscriber for `pgshim demo`: one table per RedDB collection, then a
-- subscription to pgshim's publication. Run it in the subscriber's database:
--
--   psql -d subscriber -f examples/subscriber.sql
--
-- Tables match what pgshim_collections lists: the key "rid" (the RedDB logical id) first, then
-- the collection's fields. The Country/Lang/Currency fields arrive as "character" values of
-- 2-3 letters, so they are declared bpchar (blank-padded, no length limit).
-- copy_data = false: apply the changes from the subscription on. (With copy_data = true the
-- tablesync workers COPY each table as pgshim rebuilds it from the spool's retained history.)

CREATE TABLE users (
    rid bigint PRIMARY KEY,
    active boolean,
    balance numeric,
    country bpchar,
    email text,
    homepage text,
    id bigint,
    last_ip inet,
    name text,
    phone text,
    profile jsonb,
    signed_up timestamptz,
    tags jsonb
);

-- orders are positional rows in RedDB: their fields are named c1..c8 in declared order
CREATE TABLE orders (
    rid bigint PRIMARY KEY,
    c1 bigint,
    c2 bigint,
    c3 numeric,
    c4 bpchar,
    c5 timestamptz,
    c6 smallint,
    c7 text,
    c8 uuid
);

CREATE TABLE sensors (
    rid bigint PRIMARY KEY,
    firmware text,
    ip inet,
    lat double precision,
    location point,
    lon double precision,
    mac macaddr,
    measured_at timestamptz,
    raw bytea,
    reading double precision,
    samples real[],
    sensor_id bigint
);

CREATE TABLE events (
    rid bigint PRIMARY KEY,
    asset text,
    at time,
    color text,
    counter numeric,
    country3 bpchar,
    day date,
    doc text,
    edge text,
    event_id bigint,
    exact numeric,
    key text,
    lang bpchar,
    locale varchar,
    network cidr,
    node text,
    nothing text,
    overlay text,
    page bigint,
    password text,
    peer inet,
    port integer,
    row_ref text,
    secret bytea,
    subnet cidr,
    table_ref text,
    took interval,
    vector_ref text
);

-- a RedDB materialized view: each refresh arrives as TRUNCATE followed by the new rows
CREATE TABLE mv_order_totals (
    rid bigint PRIMARY KEY,
    total numeric,
    user_id bigint
);

CREATE SUBSCRIPTION reddb_sub
    CONNECTION 'host=127.0.0.1 port=5433 user=postgres dbname=reddb'
    PUBLICATION pgshim
    WITH (copy_data = false);
