"""What leaves FloorLink as a report: the `kpis` command's figures, as data and as text."""
