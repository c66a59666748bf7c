-- A morning at plant 1000, as the ERP of schema.sql holds it (all times local, Asia/Shanghai).
-- At 2026-11-20 10:00 the wall and `python app.py kpis` show (docs/existing-databases.md):
--   notification 1  quality, raised 08:00, in process 08:06, resolved 09:00, completed 09:30
--   notification 2  equipment, raised 08:30, in process 08:50 (20 min, over its 15), open
--   notification 3  quality, raised 09:00, passed QA -> PRD 09:10 -> QA 09:20, not taken up: overdue
--   notification 4  shortage, raised 09:45, not taken up yet (15 of its 20 min)
--   notification 5  quality, yesterday, resolved and completed
--   notification 6  equipment, raised 07:00, deleted 07:10 (a false alarm): cancelled
--   notification 7  equipment, raised yesterday 20:00, in process 20:10, completed 07:30 without
--                   being resolved: closed without resolved_at
--   batch B1 of steel sheet: 500 kg received into incoming inspection yesterday 09:00, 300 kg
--   moved to the warehouse at 11:00; today 100 kg to the L1 line side at 08:00, 60 kg issued to
--   an order at 09:00, 10 kg scrapped at 09:30 (200 kg still wait in inspection: stagnant);
--   batch C7 of bolts: 1,000 received at 07:00, 100 returned to the vendor at 07:30.
--   line L1: shift A 380 of 400, shift B 90 made by 10:00 of 400.

INSERT INTO erp.crhd (objid, arbpl, werks) VALUES
    ('10000001', 'QA', '1000'), ('10000002', 'PRD', '1000'),
    ('10000003', 'MNT', '1000'), ('10000004', 'WH', '1000');
INSERT INTO erp.crtx (objid, spras, ktext) VALUES
    ('10000001', '1', '质量部'), ('10000001', 'E', 'Quality'),
    ('10000002', '1', '生产部'), ('10000002', 'E', 'Production'),
    ('10000003', '1', '设备部'), ('10000003', 'E', 'Maintenance'),
    ('10000004', '1', '仓库'), ('10000004', 'E', 'Warehouse');

INSERT INTO erp.tq80 (qmart, qmtyp) VALUES ('Q1', '02'), ('M1', '01'), ('Z3', '02');
INSERT INTO erp.tq80_t (spras, qmart, qmartx) VALUES
    ('1', 'Q1', '质量异常'), ('E', 'Q1', 'Quality anomaly'),
    ('1', 'M1', '设备故障'), ('E', 'M1', 'Equipment failure'),
    ('1', 'Z3', '物料短缺'), ('E', 'Z3', 'Material shortage');
INSERT INTO erp.zfl_sla (qmart, fl_issue_type, owner_arbpl, notify_arbpl, ack_minutes, resolve_minutes) VALUES
    ('Q1', 'quality_anomaly', 'QA', 'PRD', 10, 240),
    ('M1', 'equipment_failure', 'MNT', 'PRD', 15, 480),
    ('Z3', 'material_shortage', 'WH', 'PRD', 20, 120);

INSERT INTO erp.iflot (tplnr, iwerk) VALUES
    ('1000-L1-ST01', '1000'), ('1000-L1-ST02', '1000'), ('1000-L2-ST01', '1000');
INSERT INTO erp.iflotx (tplnr, spras, pltxt) VALUES
    ('1000-L1-ST01', '1', 'L1 冲压工位'), ('1000-L1-ST02', '1', 'L1 焊接工位'),
    ('1000-L2-ST01', '1', 'L2 冲压工位');

INSERT INTO erp.t001l (werks, lgort, lgobe) VALUES
    ('1000', '0001', '原料仓'), ('1000', '0002', 'L1 线边库'),
    ('1000', '0003', '来料待检区'), ('1000', '0004', '成品库');

INSERT INTO erp.mara (matnr, mtart, matkl, meins) VALUES
    ('000000000000100001', 'ROH', 'STEEL', 'KG'), ('000000000000100002', 'ROH', 'FASTENER', 'ST');
INSERT INTO erp.makt (matnr, spras, maktx) VALUES
    ('000000000000100001', '1', '冷轧钢板'), ('000000000000100001', 'E', 'Cold-rolled sheet'),
    ('000000000000100002', '1', 'M8 螺栓'), ('000000000000100002', 'E', 'M8 bolt');

INSERT INTO erp.usr21 (bname, persnumber) VALUES
    ('ZHANGSAN', '0000000001'), ('LISI', '0000000002'), ('WANGWU', '0000000003'), ('ZHAOLIU', '0000000004');
INSERT INTO erp.adrp (persnumber, name_text) VALUES
    ('0000000001', '张三'), ('0000000002', '李四'), ('0000000003', '王五'), ('0000000004', '赵六');
INSERT INTO erp.adcp (persnumber, department) VALUES
    ('0000000001', 'QA'), ('0000000002', 'MNT'), ('0000000003', 'PRD'), ('0000000004', 'WH');

INSERT INTO erp.qmel (qmnum, qmart, qmtxt, priok, qmdat, mzeit, erdat, erzeit, ernam, aedat, arbpl, objnr) VALUES
    ('000200000001', 'Q1', '外壳划伤超标', '2', '20261120', '080000', '20261120', '080040', 'WANGWU', '20261120', '10000001', 'QM000200000001'),
    ('000200000002', 'M1', 'L2 冲压机液压报警', '1', '20261120', '083000', '20261120', '083020', 'WANGWU', '20261120', '10000003', 'QM000200000002'),
    ('000200000003', 'Q1', '焊点虚焊', '1', '20261120', '090000', '20261120', '090030', 'WANGWU', '20261120', '10000001', 'QM000200000003'),
    ('000200000004', 'Z3', 'L1 螺栓缺料', '3', '20261120', '094500', '20261120', '094510', 'WANGWU', '20261120', '10000004', 'QM000200000004'),
    ('000200000005', 'Q1', '来料尺寸偏差', '2', '20261119', '140000', '20261119', '140030', 'ZHAOLIU', '20261119', '10000001', 'QM000200000005'),
    ('000200000006', 'M1', '传感器误报', '4', '20261120', '070000', '20261120', '070030', 'WANGWU', '20261120', '10000003', 'QM000200000006'),
    ('000200000007', 'M1', '传送带异响', '3', '20261119', '200000', '20261119', '200030', 'WANGWU', '20261120', '10000003', 'QM000200000007');
INSERT INTO erp.qmih (qmnum, tplnr) VALUES
    ('000200000001', '1000-L1-ST01'), ('000200000002', '1000-L2-ST01'), ('000200000003', '1000-L1-ST02'),
    ('000200000004', '1000-L1-ST02'), ('000200000005', '1000-L1-ST01'), ('000200000006', '1000-L2-ST01'),
    ('000200000007', '1000-L2-ST01');
INSERT INTO erp.qmur (qmnum, fenum, urnum, urtxt) VALUES
    ('000200000001', '0001', '0001', '夹具磨损'), ('000200000005', '0001', '0001', '供应商模具磨损');

-- I0068 OSNO (outstanding) is set on creation and taken back when work starts: FloorLink maps
-- neither row. I0070 NOPR = acknowledged, E0002 (the site's user status RSLV) = resolved,
-- I0072 NOCO = closed, I0076 DLFL = cancelled.
INSERT INTO erp.jcds (objnr, stat, chgnr, usnam, udate, utime, inact) VALUES
    ('QM000200000001', 'I0068', '001', 'WANGWU', '20261120', '080040', ''),
    ('QM000200000001', 'I0068', '002', 'ZHANGSAN', '20261120', '080600', 'X'),
    ('QM000200000001', 'I0070', '001', 'ZHANGSAN', '20261120', '080600', ''),
    ('QM000200000001', 'E0002', '001', 'ZHANGSAN', '20261120', '090000', ''),
    ('QM000200000001', 'I0072', '001', 'ZHANGSAN', '20261120', '093000', ''),
    ('QM000200000002', 'I0068', '001', 'WANGWU', '20261120', '083020', ''),
    ('QM000200000002', 'I0070', '001', 'LISI', '20261120', '085000', ''),
    ('QM000200000003', 'I0068', '001', 'WANGWU', '20261120', '090030', ''),
    ('QM000200000004', 'I0068', '001', 'WANGWU', '20261120', '094510', ''),
    ('QM000200000005', 'I0068', '001', 'ZHAOLIU', '20261119', '140030', ''),
    ('QM000200000005', 'I0070', '001', 'ZHANGSAN', '20261119', '140500', ''),
    ('QM000200000005', 'E0002', '001', 'ZHANGSAN', '20261119', '150000', ''),
    ('QM000200000005', 'I0072', '001', 'ZHANGSAN', '20261119', '160000', ''),
    ('QM000200000006', 'I0068', '001', 'WANGWU', '20261120', '070030', ''),
    ('QM000200000006', 'I0076', '001', 'LISI', '20261120', '071000', ''),
    ('QM000200000007', 'I0068', '001', 'WANGWU', '20261119', '200030', ''),
    ('QM000200000007', 'I0070', '001', 'LISI', '20261119', '201000', ''),
    ('QM000200000007', 'I0072', '001', 'LISI', '20261120', '073000', '');

-- Notification 3 handed to production and back: two changes of QMEL-ARBPL.
INSERT INTO erp.cdhdr (objectclas, objectid, changenr, username, udate, utime) VALUES
    ('QMEL', '000200000003', '0000004711', 'ZHANGSAN', '20261120', '091000'),
    ('QMEL', '000200000003', '0000004712', 'WANGWU', '20261120', '092000');
INSERT INTO erp.cdpos (objectclas, objectid, changenr, tabname, tabkey, fname, value_new, value_old) VALUES
    ('QMEL', '000200000003', '0000004711', 'QMEL', '800000200000003', 'ARBPL', '10000002', '10000001'),
    ('QMEL', '000200000003', '0000004712', 'QMEL', '800000200000003', 'ARBPL', '10000001', '10000002');

INSERT INTO erp.mkpf (mblnr, mjahr, budat, cpudt, cputm, usnam) VALUES
    ('5000000001', '2026', '20261119', '20261119', '090000', 'ZHAOLIU'),
    ('4900000002', '2026', '20261119', '20261119', '110000', 'ZHAOLIU'),
    ('5000000003', '2026', '20261120', '20261120', '070000', 'ZHAOLIU'),
    ('5000000004', '2026', '20261120', '20261120', '073000', 'ZHAOLIU'),
    ('4900000005', '2026', '20261120', '20261120', '080000', 'ZHAOLIU'),
    ('4900000006', '2026', '20261120', '20261120', '090000', 'WANGWU'),
    ('4900000007', '2026', '20261120', '20261120', '093000', 'WANGWU');
-- A transfer (311) is two lines, the issuing one (H) and the receiving one (S): FloorLink
-- reads the H line, which names both storage locations.
INSERT INTO erp.mseg (mblnr, mjahr, zeile, bwart, matnr, werks, lgort, charg, menge, meins, shkzg, aufnr, umlgo) VALUES
    ('5000000001', '2026', '0001', '101', '000000000000100001', '1000', '0003', 'B1', 500, 'KG', 'S', '', ''),
    ('4900000002', '2026', '0001', '311', '000000000000100001', '1000', '0003', 'B1', 300, 'KG', 'H', '', '0001'),
    ('4900000002', '2026', '0002', '311', '000000000000100001', '1000', '0001', 'B1', 300, 'KG', 'S', '', '0003'),
    ('5000000003', '2026', '0001', '101', '000000000000100002', '1000', '0001', 'C7', 1000, 'ST', 'S', '', ''),
    ('5000000004', '2026', '0001', '102', '000000000000100002', '1000', '0001', 'C7', 100, 'ST', 'H', '', ''),
    ('4900000005', '2026', '0001', '311', '000000000000100001', '1000', '0001', 'B1', 100, 'KG', 'H', '', '0002'),
    ('4900000005', '2026', '0002', '311', '000000000000100001', '1000', '0002', 'B1', 100, 'KG', 'S', '', '0001'),
    ('4900000006', '2026', '0001', '261', '000000000000100001', '1000', '0002', 'B1', 60, 'KG', 'H', '000001000123', ''),
    ('4900000007', '2026', '0001', '551', '000000000000100001', '1000', '0002', 'B1', 10, 'KG', 'H', '', '');

INSERT INTO erp.mes_shift_plan (line_id, shift_date, shift_code, planned_qty, good_qty, changed_at) VALUES
    ('L1', '2026-11-19', 'C', 400, 400, '2026-11-20 00:00:10'),
    ('L1', '2026-11-20', 'A', 400, 380, '2026-11-20 08:00:05'),
    ('L1', '2026-11-20', 'B', 400, 90, '2026-11-20 09:59:00');
