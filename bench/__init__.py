"""Benchmark workloads and the KPI benchmark of the wall's snapshot."""
