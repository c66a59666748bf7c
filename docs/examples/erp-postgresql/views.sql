-- FloorLink's canonical tables as views over the ERP of schema.sql, in a schema of their own
-- (floorlink_views) in the ERP's database. FloorLink reads them, read-only, with
--   DATABASE_URL=postgresql+psycopg://floorlink_reader@erp-host/erp?options=-csearch_path%3Dfloorlink_views
-- Names and meanings: docs/contract.md, section 1; what else the wall reads and why:
-- docs/existing-databases.md. Check the result with `python app.py check-source`.
--
-- Every instant is a `timestamp without time zone` in UTC: FloorLink compares them with UTC
-- instants, and a `timestamp with time zone` would be compared in the session's time zone.

CREATE SCHEMA floorlink_views;

-- SAP's date ('YYYYMMDD') and time ('HHMMSS') in the system's time zone, as a UTC instant;
-- SAP's "no date" ('00000000' or blank) as NULL. Set the zone to your system's (transaction
-- STZAC). It reads no table, so it runs with the reader's rights.
CREATE FUNCTION floorlink_views.sap_utc(day text, clock text) RETURNS timestamp
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN day IS NULL OR day IN ('', '00000000') THEN NULL
                ELSE (to_date(day, 'YYYYMMDD') + coalesce(nullif(clock, ''), '000000')::time)
                     AT TIME ZONE 'Asia/Shanghai' AT TIME ZONE 'UTC' END
$$;

-- What the site decides, kept beside the views: which statuses are which events, which
-- storage locations are what kind of place, the places outside the plant, the MES's shifts.
-- `first` numbers the status's events (see issue_events).
CREATE VIEW floorlink_views.status_events (stat, first, kind) AS VALUES
    ('I0070', 1, 'acknowledged'),   -- NOPR: notification in process
    ('E0002', 4, 'resolved'),       -- RSLV: the site's user status "resolved"
    ('I0072', 7, 'closed'),         -- NOCO: notification completed
    ('I0076', 10, 'closed');        -- DLFL: deletion flag; the issue is cancelled, this event its cancellation

CREATE VIEW floorlink_views.storage_location_kinds (werks, lgort, kind, line, max_dwell_minutes) AS VALUES
    ('1000', '0001', 'warehouse', NULL::varchar, 10080::float8),
    ('1000', '0002', 'line_side', 'L1', 240),
    ('1000', '0003', 'iqc', NULL, 120),
    ('1000', '0004', 'finished', NULL, NULL);

CREATE VIEW floorlink_views.outside_locations (code, name, kind) AS VALUES
    ('SUPPLIER', '供应商', 'supplier'),
    ('CUSTOMER', '客户', 'customer'),
    ('SCRAP', '报废', 'scrap'),
    ('CONSUMPTION', '生产耗用', 'consumption');

CREATE VIEW floorlink_views.shifts (code, starts, length) AS VALUES
    ('A', time '00:00', interval '8 hours'),
    ('B', time '08:00', interval '8 hours'),
    ('C', time '16:00', interval '8 hours');

-- Each change of a notification's responsible work center (change documents of QMEL-ARBPL),
-- numbered per notification in the order they were made.
CREATE VIEW floorlink_views.work_center_changes AS
SELECT h.objectid AS qmnum,
       floorlink_views.sap_utc(h.udate, h.utime) AS at,
       h.username,
       p.value_old AS from_objid,
       p.value_new AS to_objid,
       row_number() OVER (PARTITION BY h.objectid ORDER BY h.changenr) AS nth
FROM erp.cdhdr h
JOIN erp.cdpos p ON p.objectclas = h.objectclas AND p.objectid = h.objectid AND p.changenr = h.changenr
WHERE h.objectclas = 'QMEL' AND p.tabname = 'QMEL' AND p.fname = 'ARBPL';

-- ---- the canonical tables ---------------------------------------------------------------

CREATE VIEW floorlink_views.departments AS
SELECT w.arbpl::varchar(32) AS code,
       coalesce(zh.ktext, en.ktext, w.arbpl) AS name_zh,
       coalesce(en.ktext, zh.ktext, w.arbpl) AS name_en
FROM erp.crhd w
LEFT JOIN erp.crtx zh ON zh.objid = w.objid AND zh.spras = '1'
LEFT JOIN erp.crtx en ON en.objid = w.objid AND en.spras = 'E'
WHERE w.werks = '1000';

CREATE VIEW floorlink_views.people AS
SELECT u.bname::varchar(64) AS id,
       p.name_text AS name,
       c.department::varchar(32) AS department_code,
       NULL::varchar(100) AS im_handle
FROM erp.usr21 u
JOIN erp.adrp p ON p.persnumber = u.persnumber
LEFT JOIN erp.adcp c ON c.persnumber = u.persnumber;

CREATE VIEW floorlink_views.sla_rules AS
SELECT s.fl_issue_type AS issue_type,
       coalesce(zh.qmartx, s.fl_issue_type) AS name_zh,
       coalesce(en.qmartx, s.fl_issue_type) AS name_en,
       s.owner_arbpl AS owner_department_code,
       s.notify_arbpl AS notify_department_codes,
       s.ack_minutes::float8 AS ack_minutes,
       s.resolve_minutes::float8 AS resolve_minutes
FROM erp.zfl_sla s
LEFT JOIN erp.tq80_t zh ON zh.qmart = s.qmart AND zh.spras = '1'
LEFT JOIN erp.tq80_t en ON en.qmart = s.qmart AND en.spras = 'E';

-- Storage locations of a known kind (plant-storage location), the stations of the lines
-- (functional locations, named plant-line-station), and the places outside the plant.
CREATE VIEW floorlink_views.locations AS
SELECT (l.werks || '-' || l.lgort)::varchar(64) AS code, l.lgobe::varchar(100) AS name,
       k.kind::varchar(16) AS kind, k.line::varchar(32) AS line, k.max_dwell_minutes
FROM erp.t001l l
JOIN floorlink_views.storage_location_kinds k ON k.werks = l.werks AND k.lgort = l.lgort
UNION ALL
SELECT f.tplnr, coalesce(x.pltxt, f.tplnr), 'wip', split_part(f.tplnr, '-', 2), NULL
FROM erp.iflot f
LEFT JOIN erp.iflotx x ON x.tplnr = f.tplnr AND x.spras = '1'
WHERE f.iwerk = '1000'
UNION ALL
SELECT o.code, o.name, o.kind, NULL, NULL FROM floorlink_views.outside_locations o;

CREATE VIEW floorlink_views.materials AS
SELECT ltrim(m.matnr, '0')::varchar(64) AS code,
       coalesce(zh.maktx, en.maktx, ltrim(m.matnr, '0')) AS name,
       m.meins::varchar(16) AS unit,
       m.matkl::varchar(64) AS category
FROM erp.mara m
LEFT JOIN erp.makt zh ON zh.matnr = m.matnr AND zh.spras = '1'
LEFT JOIN erp.makt en ON en.matnr = m.matnr AND en.spras = 'E';

-- A notification's times are the first time each status was set (and not taken back); one
-- resolved without being put in process was acknowledged when it was resolved. updated_at is
-- the latest of its entry, its status changes and its work center changes: edits of its text
-- or priority leave no time of day in SAP, and reach the wall at its next full read.
CREATE VIEW floorlink_views.issues AS
SELECT ltrim(q.qmnum, '0')::varchar(64) AS id,
       s.fl_issue_type AS issue_type,
       q.qmtxt::varchar(400) AS title,
       ('P' || q.priok)::varchar(2) AS severity,
       nullif(i.tplnr, '')::varchar(64) AS location_code,
       q.ernam::varchar(100) AS raised_by,
       floorlink_views.sap_utc(q.qmdat, q.mzeit) AS raised_at,
       w.arbpl::varchar(32) AS owner_department_code,
       coalesce(st.in_process_at, st.resolved_at) AS acknowledged_at,
       st.resolved_at,
       st.closed_at,
       (CASE WHEN st.cancelled_at IS NOT NULL THEN 'cancelled'
             WHEN st.closed_at IS NOT NULL THEN 'closed'
             WHEN st.resolved_at IS NOT NULL THEN 'resolved'
             WHEN st.in_process_at IS NOT NULL THEN 'acknowledged'
             ELSE 'open' END)::varchar(16) AS status,
       (SELECT string_agg(u.urtxt, '; ' ORDER BY u.fenum, u.urnum)
        FROM erp.qmur u WHERE u.qmnum = q.qmnum) AS cause,
       greatest(floorlink_views.sap_utc(q.erdat, q.erzeit), st.changed_at,
                (SELECT max(c.at) FROM floorlink_views.work_center_changes c
                 WHERE c.qmnum = q.qmnum)) AS updated_at
FROM erp.qmel q
LEFT JOIN erp.zfl_sla s ON s.qmart = q.qmart
LEFT JOIN erp.qmih i ON i.qmnum = q.qmnum
LEFT JOIN erp.crhd w ON w.objid = q.arbpl
LEFT JOIN LATERAL (
    SELECT min(floorlink_views.sap_utc(j.udate, j.utime)) FILTER (WHERE j.stat = 'I0070' AND j.inact <> 'X') AS in_process_at,
           min(floorlink_views.sap_utc(j.udate, j.utime)) FILTER (WHERE j.stat = 'E0002' AND j.inact <> 'X') AS resolved_at,
           min(floorlink_views.sap_utc(j.udate, j.utime)) FILTER (WHERE j.stat IN ('I0072', 'I0076') AND j.inact <> 'X') AS closed_at,
           min(floorlink_views.sap_utc(j.udate, j.utime)) FILTER (WHERE j.stat = 'I0076' AND j.inact <> 'X') AS cancelled_at,
           max(floorlink_views.sap_utc(j.udate, j.utime)) AS changed_at
    FROM erp.jcds j
    WHERE j.objnr = q.objnr
) st ON true;

-- Events: the notification's creation (raised), its status changes (status_events) and its
-- work center changes (reassigned), each with the work center that holds it afterwards.
-- recorded_at is when SAP wrote the row.
-- The id must stay the same from read to read, and FloorLink reads it as a 32-bit integer
-- (up to 2147483647): 20 numbers per notification of the number range that starts at
-- 000200000000, 0 for raised, 3 per status (its first 3 changes, CHGNR 001-003), 13 to 19 for
-- the first 7 work center changes. It is stable because SAP only appends to JCDS and CDPOS; a
-- notification with more changes than that repeats an id, which check-source reports.
CREATE VIEW floorlink_views.issue_events AS
WITH happened AS (
    SELECT q.qmnum, q.arbpl, (q.qmnum::bigint - 200000000) * 20 AS id,
           floorlink_views.sap_utc(q.qmdat, q.mzeit) AS at, 'raised' AS kind, q.ernam AS actor,
           floorlink_views.sap_utc(q.erdat, q.erzeit) AS recorded_at, NULL::varchar AS to_objid
    FROM erp.qmel q
    UNION ALL
    SELECT q.qmnum, q.arbpl, (q.qmnum::bigint - 200000000) * 20 + s.first + j.chgnr::int - 1,
           floorlink_views.sap_utc(j.udate, j.utime), s.kind, j.usnam,
           floorlink_views.sap_utc(j.udate, j.utime), NULL
    FROM erp.qmel q
    JOIN erp.jcds j ON j.objnr = q.objnr AND j.inact <> 'X'
    JOIN floorlink_views.status_events s ON s.stat = j.stat
    UNION ALL
    SELECT q.qmnum, q.arbpl, (q.qmnum::bigint - 200000000) * 20 + 12 + c.nth, c.at, 'reassigned', c.username,
           c.at, c.to_objid
    FROM floorlink_views.work_center_changes c
    JOIN erp.qmel q ON q.qmnum = c.qmnum
)
SELECT h.id,
       ltrim(h.qmnum, '0')::varchar(64) AS issue_id,
       h.at,
       h.kind::varchar(16) AS kind,
       w.arbpl::varchar(32) AS department_code,
       h.actor::varchar(100) AS actor,
       NULL::text AS note,
       h.recorded_at
FROM happened h
LEFT JOIN LATERAL (
    -- who holds the notification after the event: the last work center change up to it,
    -- else the one before the first change, else the one on the notification
    SELECT coalesce(h.to_objid,
                    (SELECT c.to_objid FROM floorlink_views.work_center_changes c
                     WHERE c.qmnum = h.qmnum AND c.at <= h.at ORDER BY c.nth DESC LIMIT 1),
                    (SELECT c.from_objid FROM floorlink_views.work_center_changes c
                     WHERE c.qmnum = h.qmnum ORDER BY c.nth LIMIT 1),
                    h.arbpl) AS objid
) holder ON true
LEFT JOIN erp.crhd w ON w.objid = holder.objid;

-- Material document lines by movement type; other movement types are left out. The entry
-- time (CPUDT, CPUTM) is both when the move happened and when it was written: the posting
-- date (BUDAT) has no time of day, which dwell times need.
CREATE VIEW floorlink_views.movements AS
SELECT (m.mblnr || '-' || m.mjahr || '-' || m.zeile)::varchar(64) AS id,
       floorlink_views.sap_utc(k.cpudt, k.cputm) AS at,
       ltrim(m.matnr, '0')::varchar(64) AS material_code,
       m.charg::varchar(64) AS lot,
       m.menge::float8 AS qty,
       (CASE m.bwart WHEN '101' THEN 'SUPPLIER'                 -- goods receipt
                     WHEN '262' THEN 'CONSUMPTION'              -- reversal of an issue to an order
                     ELSE m.werks || '-' || m.lgort END)::varchar(64) AS from_location_code,
       (CASE m.bwart WHEN '101' THEN m.werks || '-' || m.lgort
                     WHEN '102' THEN 'SUPPLIER'                 -- return to the vendor
                     WHEN '261' THEN 'CONSUMPTION'              -- issue to a production order
                     WHEN '262' THEN m.werks || '-' || m.lgort
                     WHEN '311' THEN m.werks || '-' || m.umlgo  -- transfer between storage locations
                     WHEN '551' THEN 'SCRAP'
                     WHEN '601' THEN 'CUSTOMER' END)::varchar(64) AS to_location_code,
       nullif(m.aufnr, '')::varchar(64) AS order_ref,
       floorlink_views.sap_utc(k.cpudt, k.cputm) AS recorded_at
FROM erp.mseg m
JOIN erp.mkpf k ON k.mblnr = m.mblnr AND k.mjahr = m.mjahr
WHERE m.bwart IN ('101', '102', '261', '262', '311', '551', '601')
  AND NOT (m.bwart = '311' AND m.shkzg = 'S');

CREATE VIEW floorlink_views.production_plan AS
SELECT p.line_id::varchar(32) AS line,
       (p.shift_date + s.starts) AT TIME ZONE 'Asia/Shanghai' AT TIME ZONE 'UTC' AS shift_start,
       (p.shift_date + s.starts + s.length) AT TIME ZONE 'Asia/Shanghai' AT TIME ZONE 'UTC' AS shift_end,
       p.planned_qty::float8 AS planned_qty,
       p.good_qty::float8 AS actual_qty,
       p.changed_at AT TIME ZONE 'Asia/Shanghai' AT TIME ZONE 'UTC' AS updated_at
FROM erp.mes_shift_plan p
JOIN floorlink_views.shifts s ON s.code = p.shift_code;

-- ---- what the wall reads beyond the contract ----------------------------------------------

-- Each lot's balance per location over every movement, with the last time it moved in:
-- FloorLink keeps this as a table of running balances; here it is summed when read.
CREATE VIEW floorlink_views.lot_stock AS
SELECT f.lot, f.material_code, f.location_code, sum(f.qty) AS qty, max(f.in_at) AS last_in_at
FROM (SELECT lot, material_code, to_location_code AS location_code, qty, at AS in_at
      FROM floorlink_views.movements
      UNION ALL
      SELECT lot, material_code, from_location_code, -qty, NULL
      FROM floorlink_views.movements) f
GROUP BY f.lot, f.material_code, f.location_code
HAVING abs(sum(f.qty)) > 1e-9;

-- The bulk version: when it changes, every wall process reads everything again. Here it
-- changes every hour, so that what the stamps above cannot show (an edited text, a deleted
-- row) reaches the wall within the hour.
CREATE VIEW floorlink_views.data_versions (name, version) AS
SELECT 'bulk'::varchar(32), floor(extract(epoch FROM now()) / 3600)::integer;

-- The schema revision these views present; `python app.py serve` refuses any other. When a
-- FloorLink upgrade brings a new revision, review the views against it, then raise this.
CREATE VIEW floorlink_views.alembic_version (version_num) AS VALUES ('0011'::varchar(32));
