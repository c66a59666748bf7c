"""The demo plant: its reference data, months of history written in one go (`history`), and
a live simulator that keeps writing to it (`simulator`), both from one pace model."""
from data.demo.history import build_demo_plant, is_empty

__all__ = ["build_demo_plant", "is_empty"]
