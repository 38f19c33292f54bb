"""A Singer target for PostgreSQL that hands each record's JSON to the database.

Records are not decoded in Python: each RECORD line is copied (``COPY``) as it came into a
staging table, and one ``INSERT … SELECT … ON CONFLICT`` per stream and batch turns the JSON
into the table's columns (``jsonb_populate_record``), keeps the last version of each key and
upserts it.  Tables, columns and ``_sdc_*`` metadata are those MeltanoLabs target-postgres
creates, so either loader can load the same tables.
"""
