"""The remote ScrapingPros API: client, errors, rate limiter and answer models.

Nothing here knows about job files; callers speak in names, ids and request dicts.
"""
