-- A small ERP database shaped like SAP's, in the schema `erp`: quality notifications (QMEL,
-- QMIH, QMUR), their status history (JCDS) and change documents (CDHDR, CDPOS), work centers
-- (CRHD, CRTX), notification types (TQ80, TQ80_T), functional locations (IFLOT, IFLOTX),
-- storage locations (T001L), materials (MARA, MAKT), material documents (MKPF, MSEG), user
-- names (USR21, ADRP, ADCP); beside them a table of the site's own (ZFL_SLA: the time limits
-- per notification type) and a table of the MES (MES_SHIFT_PLAN).
--
-- Only the fields FloorLink reads are here, with SAP's names and SAP's habits: dates are
-- 'YYYYMMDD' text and times 'HHMMSS' text in the system's local time, "no date" is
-- '00000000' or '' rather than NULL, numbers carry leading zeros (QMNUM, MATNR), and a
-- status is a row per change in JCDS. FloorLink never reads these tables: it reads the views
-- of views.sql.

CREATE SCHEMA erp;

-- Work centers: the departments that are responsible for notifications.
CREATE TABLE erp.crhd (
    objid  char(8) PRIMARY KEY,        -- object id, what QMEL.ARBPL points at
    arbpl  varchar(8) NOT NULL,        -- work center code
    werks  char(4) NOT NULL            -- plant
);
CREATE TABLE erp.crtx (
    objid  char(8),
    spras  char(1),                    -- language key: '1' Chinese, 'E' English
    ktext  varchar(40),
    PRIMARY KEY (objid, spras)
);

-- Notification types and their texts.
CREATE TABLE erp.tq80 (
    qmart  char(2) PRIMARY KEY,
    qmtyp  char(2)                     -- notification category
);
CREATE TABLE erp.tq80_t (
    spras  char(1),
    qmart  char(2),
    qmartx varchar(20),
    PRIMARY KEY (spras, qmart)
);

-- The site's own table: the time limits of each notification type, and who owns it.
CREATE TABLE erp.zfl_sla (
    qmart           char(2) PRIMARY KEY,
    fl_issue_type   varchar(64) NOT NULL,   -- FloorLink's issue type
    owner_arbpl     varchar(8) NOT NULL,
    notify_arbpl    varchar(100) NOT NULL DEFAULT '',  -- work centers to tell, ';'-separated
    ack_minutes     numeric(9, 2),
    resolve_minutes numeric(9, 2)
);

-- Functional locations: the stations of the lines, named plant-line-station.
CREATE TABLE erp.iflot (
    tplnr  varchar(30) PRIMARY KEY,
    iwerk  char(4)
);
CREATE TABLE erp.iflotx (
    tplnr  varchar(30),
    spras  char(1),
    pltxt  varchar(40),
    PRIMARY KEY (tplnr, spras)
);

-- Storage locations.
CREATE TABLE erp.t001l (
    werks  char(4),
    lgort  char(4),
    lgobe  varchar(16),
    PRIMARY KEY (werks, lgort)
);

-- Materials and their texts.
CREATE TABLE erp.mara (
    matnr  char(18) PRIMARY KEY,
    mtart  char(4),                    -- material type
    matkl  varchar(9),                 -- material group
    meins  varchar(3)                  -- base unit
);
CREATE TABLE erp.makt (
    matnr  char(18),
    spras  char(1),
    maktx  varchar(40),
    PRIMARY KEY (matnr, spras)
);

-- Users: logon name, person, and the person's department (business address services).
CREATE TABLE erp.usr21 (
    bname       varchar(12) PRIMARY KEY,
    persnumber  char(10)
);
CREATE TABLE erp.adrp (
    persnumber  char(10) PRIMARY KEY,
    name_text   varchar(80)
);
CREATE TABLE erp.adcp (
    persnumber  char(10) PRIMARY KEY,
    department  varchar(40)            -- here: the work center code
);

-- Quality notifications.
CREATE TABLE erp.qmel (
    qmnum   char(12) PRIMARY KEY,
    qmart   char(2),
    qmtxt   varchar(40),               -- short text
    priok   char(1),                   -- priority '1' (very high) .. '4' (low)
    qmdat   char(8),                   -- notification date and time: when the problem was reported
    mzeit   char(6),
    erdat   char(8),                   -- created on, at, by: when it was entered
    erzeit  char(6),
    ernam   varchar(12),
    aedat   char(8),                   -- changed on (a date only)
    arbpl   char(8),                   -- responsible work center (CRHD.OBJID)
    objnr   varchar(22)                -- status object: 'QM' || QMNUM
);
CREATE TABLE erp.qmih (                -- where the malfunction is
    qmnum   char(12) PRIMARY KEY,
    tplnr   varchar(30)
);
CREATE TABLE erp.qmur (                -- causes
    qmnum   char(12),
    fenum   char(4),
    urnum   char(4),
    urtxt   varchar(40),
    PRIMARY KEY (qmnum, fenum, urnum)
);

-- Status history: a row each time a status is set (INACT '') or taken back (INACT 'X').
CREATE TABLE erp.jcds (
    objnr   varchar(22),
    stat    varchar(5),                -- I0068 OSNO, I0070 NOPR, I0072 NOCO, I0076 DLFL, E0002 user status
    chgnr   char(3),                   -- change number, counted per object and status
    usnam   varchar(12),
    udate   char(8),
    utime   char(6),
    inact   char(1) NOT NULL DEFAULT '',
    PRIMARY KEY (objnr, stat, chgnr)
);

-- Change documents: who changed which field of which object, and when.
CREATE TABLE erp.cdhdr (
    objectclas  varchar(15),
    objectid    varchar(90),
    changenr    char(10),
    username    varchar(12),
    udate       char(8),
    utime       char(6),
    PRIMARY KEY (objectclas, objectid, changenr)
);
CREATE TABLE erp.cdpos (
    objectclas  varchar(15),
    objectid    varchar(90),
    changenr    char(10),
    tabname     varchar(30),
    tabkey      varchar(70),
    fname       varchar(30),
    value_new   varchar(254),
    value_old   varchar(254),
    PRIMARY KEY (objectclas, objectid, changenr, tabname, tabkey, fname)
);

-- Material documents: header (entry date and time) and lines.
CREATE TABLE erp.mkpf (
    mblnr  char(10),
    mjahr  char(4),
    budat  char(8),                    -- posting date
    cpudt  char(8),                    -- entered on, at
    cputm  char(6),
    usnam  varchar(12),
    PRIMARY KEY (mblnr, mjahr)
);
CREATE TABLE erp.mseg (
    mblnr  char(10),
    mjahr  char(4),
    zeile  char(4),
    bwart  char(3),                    -- movement type
    matnr  char(18),
    werks  char(4),
    lgort  char(4),
    charg  varchar(10),                -- batch
    menge  numeric(13, 3),             -- always positive; SHKZG says which way
    meins  varchar(3),
    shkzg  char(1),                    -- S receipt, H issue
    aufnr  char(12) NOT NULL DEFAULT '',  -- production order
    umlgo  char(4) NOT NULL DEFAULT '',   -- receiving storage location of a transfer
    PRIMARY KEY (mblnr, mjahr, zeile)
);

-- The MES: plan and good quantity per line and shift, in local time.
CREATE TABLE erp.mes_shift_plan (
    line_id      varchar(8),
    shift_date   date,
    shift_code   char(1),              -- A 00:00-08:00, B 08:00-16:00, C 16:00-24:00
    planned_qty  numeric(12, 3) NOT NULL,
    good_qty     numeric(12, 3),
    changed_at   timestamp NOT NULL,   -- local time of the last change
    PRIMARY KEY (line_id, shift_date, shift_code)
);
