-- The login FloorLink uses: it reads the views of views.sql and nothing else (the views read
-- the ERP's tables with their owner's rights), and every transaction it opens is read-only.
-- Choose your own password. FloorLink finds the views through the search_path option of its
-- DATABASE_URL; where a URL cannot carry options, add
--   ALTER ROLE floorlink_reader SET search_path = floorlink_views;
CREATE ROLE floorlink_reader LOGIN PASSWORD 'change-me';
GRANT USAGE ON SCHEMA floorlink_views TO floorlink_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA floorlink_views TO floorlink_reader;
ALTER ROLE floorlink_reader SET default_transaction_read_only = on;
