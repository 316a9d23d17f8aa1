"""A local stand-in of the ScrapingPros API (SPEC §6). It does not import `sprunner.api`."""
