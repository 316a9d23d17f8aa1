"""sprunner: a declarative job runner for the ScrapingPros asynchronous scraping API."""

__version__ = "0.1.0"
