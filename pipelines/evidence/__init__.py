"""Evidence on demand for compliance officers, built on the nightly tables (not an asset area: nothing
here is materialised): one subject's file (``subject.py``, ``page.py``), run
from the CLI (``python -m pipelines subject``) or the Dagster job ``subject_file`` (``op.py``)."""
