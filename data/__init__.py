"""FloorLink's data layer: the database, the KPI engine, import and the demo plant.

Pages and the command line call into this package; nothing outside it builds SQL.
"""
