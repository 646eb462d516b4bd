"""Registry lists cost a fixed number of SQL statements, whatever the number of rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from jupyter_modelserve.registry.store import RegistryStore


def test_lists_issue_the_same_statements_for_3_rows_as_for_30(tmp_path: Path) -> None:
    # Given a registry with 3, then 30, served models and 3, then 30, tagged versions of one
    store = RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}")
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    counts = []
    for total in (3, 30):
        while len(store.list_serves("local")) < total:
            index = len(store.list_serves("local"))
            store.add_model_version(f"m{index}", lambda v: f"/m/{v}", "tensorflow", tags=["t"])
            store.insert_serve(f"m{index}", 1, "local", None)
            store.add_model_version("big", lambda v: f"/big/{v}", "tensorflow", tags=["a", "b"])
        # When listing the serves and the versions
        statements.clear()
        serves = store.list_serves("local")
        serve_statements = len(statements)
        statements.clear()
        versions = store.list_model_versions("big")
        counts.append((len(serves), serve_statements, len(versions), len(statements)))
        # Then every row came back with its source and tags
        assert all(s.source.startswith("/m/") for s in serves)
        assert all(v.tags == ["a", "b"] for v in versions)
    store.close()
    # Then one statement lists the serves and three the versions, for 3 rows as for 30
    assert counts == [(3, 1, 3, 3), (30, 1, 30, 3)]
