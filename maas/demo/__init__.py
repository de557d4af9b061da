"""The demo city 云溪市: generated GTFS feeds of several operators plus platform fare configuration."""

from maas.demo.city import DemoFeed, demo_holiday, read_seat_capacity, service_window, write_demo_city

__all__ = ["DemoFeed", "demo_holiday", "read_seat_capacity", "service_window", "write_demo_city"]
