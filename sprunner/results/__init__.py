"""Results: drain a run's scraped data into files while the run goes on (SPEC §7).

Stages, each a module: `layout` (where a run's file goes), `rows` (one row per job),
`writer` (a resumable, streamed file that appears under its final name only when
complete), `drain` (the jobs listing read by high-water mark, deduplicated by job id).

Nothing here is imported at start-up: fsspec and pyarrow load only when a run has a
`results:` block.
"""
