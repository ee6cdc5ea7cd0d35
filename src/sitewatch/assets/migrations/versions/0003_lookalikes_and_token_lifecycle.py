"""look-alike names and codes refused; token expiry and last use

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 09:00:00

Organisations get ``name_key`` (NFKC, case-folded, unique) and compounds ``code_key`` (the code in
lower case, unique); tokens get ``expires_at`` and ``last_used_at``. A database that already holds look-alike
organisation names, or compound codes that clash (equal but for case, or one the other followed by
``-``), is refused with the list of them: rename them (in the ledger, then re-import) and upgrade
again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sitewatch.contract.ownership import clashing_pairs
from sitewatch.text import name_key

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _refuse_lookalikes(conn: sa.Connection) -> dict[int, str]:
    """Keys of the organisations by id; raises when names or codes clash."""
    keys: dict[int, str] = {}
    seen: dict[str, str] = {}
    problems = []
    for ident, name in conn.execute(sa.text("SELECT id, name FROM organisations ORDER BY id")):
        key = name_key(name)
        if key in seen:
            problems.append(f"organisations {seen[key]!r} and {name!r} are one name")
        seen.setdefault(key, name)
        keys[ident] = key
    codes = [row[0] for row in conn.execute(sa.text("SELECT code FROM compounds ORDER BY code"))]
    problems += [f"compound codes {a!r} and {b!r} clash" for a, b in clashing_pairs(codes)]
    if problems:
        raise RuntimeError(
            "the registry holds look-alike entries; rename them and upgrade again: "
            + "; ".join(problems[:50])
        )
    return keys


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    keys = _refuse_lookalikes(conn)
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("name_key", sa.String(200), nullable=True))
    organisations = sa.table("organisations", sa.column("id", sa.Integer), sa.column("name_key", sa.String))
    for ident, key in keys.items():
        conn.execute(organisations.update().where(organisations.c.id == ident).values(name_key=key))
    with op.batch_alter_table("organisations") as batch:
        batch.alter_column("name_key", existing_type=sa.String(200), nullable=False)
        batch.create_unique_constraint(batch.f("uq_organisations_name_key"), ["name_key"])
    with op.batch_alter_table("compounds") as batch:
        batch.add_column(sa.Column("code_key", sa.String(64), nullable=True))
    conn.execute(sa.text("UPDATE compounds SET code_key = lower(code)"))
    with op.batch_alter_table("compounds") as batch:
        batch.alter_column("code_key", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint(batch.f("uq_compounds_code_key"), ["code_key"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
    with op.batch_alter_table("compounds") as batch:
        batch.drop_constraint(batch.f("uq_compounds_code_key"), type_="unique")
        batch.drop_column("code_key")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_constraint(batch.f("uq_organisations_name_key"), type_="unique")
        batch.drop_column("name_key")
