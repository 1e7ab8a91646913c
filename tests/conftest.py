from session_fixtures import _graph_cache, run_cli  # noqa: F401  (fixtures shared with tools/tests)
