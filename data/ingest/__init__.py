"""Data in: canonical CSV/XLSX files checked row by row and written all or nothing."""
