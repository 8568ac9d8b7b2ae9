"""Developer helper: `python -m models.migrations.autogenerate "message"` writes a migration.

It diffs `Base.metadata` against a scratch SQLite database migrated to head.
"""

import sys
import tempfile
from pathlib import Path

from alembic import command

from models.db import alembic_config, make_engine


def main() -> None:
    """Autogenerate a migration named by the first argument."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        config = alembic_config(engine)
        command.upgrade(config, "head")
        command.revision(config, message=sys.argv[1], autogenerate=True)


if __name__ == "__main__":
    main()
