"""Settings from the environment (CONTRACT 1): defaults, validation, and the hash key policy."""

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import config
from pipelines.config import DEV_HASH_KEY, ConfigError, load_settings, resolve_hash_key, warn_if_dev_key


def test_defaults_when_nothing_is_set():
    s = load_settings({})
    assert s.inbox == Path("data/inbox")
    assert s.warehouse == Path("data/warehouse.duckdb")
    assert s.reports == Path("data/reports")
    assert s.retention_days == 28
    assert s.hash_key == DEV_HASH_KEY and s.using_dev_key
    assert s.environment == "development"


def test_every_variable_is_read():
    s = load_settings(
        {
            "COMPLIANCE_INBOX": "/x/inbox",
            "COMPLIANCE_WAREHOUSE": "/x/w.duckdb",
            "COMPLIANCE_REPORTS": "/x/reports",
            "COMPLIANCE_HASH_KEY": "secret",
            "COMPLIANCE_RAW_RETENTION_DAYS": "7",
            "COMPLIANCE_ENV": " Production ",
        }
    )
    assert (s.inbox, s.warehouse, s.reports) == (Path("/x/inbox"), Path("/x/w.duckdb"), Path("/x/reports"))
    assert (s.hash_key, s.retention_days, s.environment) == ("secret", 7, "production")
    assert not s.using_dev_key


def test_blank_values_fall_back_to_the_defaults():
    s = load_settings({"COMPLIANCE_INBOX": "  ", "COMPLIANCE_RAW_RETENTION_DAYS": ""})
    assert s.inbox == Path("data/inbox") and s.retention_days == 28


def test_the_key_is_never_in_the_repr():
    assert "secret-value" not in repr(load_settings({"COMPLIANCE_HASH_KEY": "secret-value"}))


@pytest.mark.parametrize("raw", ["abc", "2.5", "0", "-1", "1e3"])
def test_bad_retention_is_a_config_error(raw):
    with pytest.raises(ConfigError, match="COMPLIANCE_RAW_RETENTION_DAYS"):
        load_settings({"COMPLIANCE_RAW_RETENTION_DAYS": raw})


@pytest.mark.parametrize("raw, days", [("1", 1), (" 28 ", 28), ("365", 365)])
def test_good_retention(raw, days):
    assert config.parse_retention(raw) == days


@pytest.mark.parametrize("key", [None, "", "   ", "\t\n"])
def test_production_without_a_key_refuses_to_run(key):
    env = {"COMPLIANCE_ENV": "production"}
    if key is not None:
        env["COMPLIANCE_HASH_KEY"] = key
    with pytest.raises(ConfigError, match="COMPLIANCE_HASH_KEY") as exc:
        load_settings(env)
    assert "\n" not in str(exc.value)


def test_production_with_the_public_dev_key_refuses_to_run():
    with pytest.raises(ConfigError, match="development key"):
        resolve_hash_key({"COMPLIANCE_ENV": "production", "COMPLIANCE_HASH_KEY": DEV_HASH_KEY})


@pytest.mark.parametrize("key", [None, "", "  "])
def test_outside_production_a_missing_key_uses_the_dev_key(key):
    env = {} if key is None else {"COMPLIANCE_HASH_KEY": key}
    assert resolve_hash_key(env) == DEV_HASH_KEY


def test_a_real_key_is_used_verbatim():
    # surrounding whitespace is part of a key that is not blank: it is not silently changed
    assert resolve_hash_key({"COMPLIANCE_HASH_KEY": " k ", "COMPLIANCE_ENV": "production"}) == " k "


def test_dev_key_warning_is_logged_and_names_no_key(caplog):
    caplog.set_level(logging.WARNING)
    warn_if_dev_key("a-real-key")
    assert caplog.records == []
    warn_if_dev_key(DEV_HASH_KEY)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "COMPLIANCE_HASH_KEY" in message and "WARNING" in message
    assert DEV_HASH_KEY not in message


@pytest.mark.parametrize(
    ("value", "expected_bytes"),
    [(None, 2 * 10**9), ("1536MB", 1536 * 10**6), ("512MiB", 512 * 2**20)],
)
def test_every_warehouse_connection_gets_the_memory_limit(tmp_path, monkeypatch, value, expected_bytes):
    """2GB by default: 1536MB made a 3M backfill run out of memory (docs/scaling.md)."""
    from pipelines.warehouse import ENV_MEMORY_LIMIT, connect

    if value is None:
        monkeypatch.delenv(ENV_MEMORY_LIMIT, raising=False)
    else:
        monkeypatch.setenv(ENV_MEMORY_LIMIT, value)
    with connect(tmp_path / "w.duckdb", "k") as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    number, unit = limit.split()
    factor = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    # DuckDB prints the limit rounded to 0.1 ("1.4 GiB" for 1536MB): within 5 %, which still
    # tells 1536MB from 2GB (30 % apart)
    assert abs(float(number) * factor - expected_bytes) <= expected_bytes / 20


def test_warehouse_connections_print_no_progress_bar(tmp_path, monkeypatch):
    """Backfill workers printed DuckDB's progress bars into the run's output; the compaction's own
    connection gets the same settings as the warehouse's."""
    import duckdb

    from pipelines.warehouse import ENV_MEMORY_LIMIT, apply_connection_settings, connect

    monkeypatch.setenv(ENV_MEMORY_LIMIT, "700MB")
    with connect(tmp_path / "w.duckdb", "k") as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0] is False
    bare = duckdb.connect()  # as the compaction opens its own
    try:
        apply_connection_settings(bare)
        assert bare.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0] is False
        assert bare.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "667.5 MiB"
    finally:
        bare.close()


def test_a_block_can_run_under_a_smaller_memory_limit_and_gets_the_old_one_back(tmp_path, monkeypatch):
    """memory_limit_at_most lowers the limit for one block (the erasure scan's join with its memory)
    and never raises it; afterwards, also after an error, the connection has its limit back."""
    import duckdb

    from pipelines.warehouse import ENV_MEMORY_LIMIT, connect, memory_limit_at_most

    def limit(con) -> str:
        return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    monkeypatch.delenv(ENV_MEMORY_LIMIT, raising=False)
    with connect(tmp_path / "w.duckdb", "k") as con:
        assert limit(con) == "1.8 GiB"  # 2GB
        with memory_limit_at_most(con, "1GB"):
            assert limit(con) == "953.6 MiB"
        assert limit(con) == "1.8 GiB"
        with pytest.raises(RuntimeError), memory_limit_at_most(con, "1GB"):
            assert limit(con) == "953.6 MiB"
            raise RuntimeError("the join failed")
        assert limit(con) == "1.8 GiB"
        with memory_limit_at_most(con, "3GB"):  # higher: left alone
            assert limit(con) == "1.8 GiB"
        assert limit(con) == "1.8 GiB"
    monkeypatch.setenv(ENV_MEMORY_LIMIT, "700MB")
    with connect(tmp_path / "w.duckdb", "k") as con:
        with memory_limit_at_most(con, "1GB"):  # lower already: left alone
            assert limit(con) == "667.5 MiB"
        assert limit(con) == "667.5 MiB"
    bare = duckdb.connect()  # a limit that is not the configured one comes back as DuckDB printed it
    try:
        bare.execute("SET memory_limit = '3GB'")
        assert limit(bare) == "2.7 GiB"  # 2.79 GiB: DuckDB truncates what it prints
        with memory_limit_at_most(bare, "1GB"):
            assert limit(bare) == "953.6 MiB"
        assert limit(bare) in ("2.6 GiB", "2.7 GiB")  # 2.7 GiB, printed truncated again
    finally:
        bare.close()


def test_a_memory_limit_duckdb_cannot_lower_to_is_a_warning_not_a_failure(tmp_path, monkeypatch, caplog):
    """If DuckDB cannot get under the smaller budget (no room for its spill files, say), the block
    runs with the limit it had: the budget is there for the peak, not for the answer."""
    import duckdb

    from pipelines.warehouse import ENV_MEMORY_LIMIT, connect, memory_limit_at_most

    class RefusesToLower:
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *args):
            if sql == "SET memory_limit = '1GB'":
                raise duckdb.OutOfMemoryException("Failed to change memory limit: could not free up enough memory")
            return self.con.execute(sql, *args)

    monkeypatch.delenv(ENV_MEMORY_LIMIT, raising=False)
    with connect(tmp_path / "w.duckdb", "k") as con, caplog.at_level("WARNING"):
        refusing = RefusesToLower(con)
        ran = False
        with memory_limit_at_most(refusing, "1GB"):
            ran = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "1.8 GiB"
        assert ran
        assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "1.8 GiB"
    assert "memory limit stays at 1.8 GiB, not 1GB" in caplog.text


def test_an_empty_memory_limit_leaves_duckdbs_default_and_a_bad_one_is_a_clear_error(tmp_path, monkeypatch):
    from pipelines.warehouse import ENV_MEMORY_LIMIT, connect

    monkeypatch.setenv(ENV_MEMORY_LIMIT, "")
    with connect(tmp_path / "w.duckdb", "k") as con:
        default = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert default == duckdb_default_memory_limit()
    monkeypatch.setenv(ENV_MEMORY_LIMIT, "lots")
    with pytest.raises(ConfigError, match="COMPLIANCE_DUCKDB_MEMORY_LIMIT='lots' is not a DuckDB memory size"):
        with connect(tmp_path / "w.duckdb", "k"):
            pass


def duckdb_default_memory_limit() -> str:
    import duckdb

    con = duckdb.connect()
    try:
        return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Numeric settings: whole ASCII numbers within documented bounds, or one clear line
# ---------------------------------------------------------------------------------------------

NOT_WHOLE_NUMBERS = ["1e3", "28.5", "+28", "-0", "-28", "٢٨", "０２８", "0x1c", "2_8", "28d", "", " ", "2 8", "28\n5"]
OUT_OF_BOUNDS = ["1000000000", "9" * 5000, "99999999999999999999999999", "3651"]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and len(message) < 300, message
    return message


@pytest.mark.parametrize("raw", NOT_WHOLE_NUMBERS + OUT_OF_BOUNDS + ["0"])
def test_retention_is_refused_unless_a_whole_number_within_bounds(raw):
    with pytest.raises(ConfigError, match="COMPLIANCE_RAW_RETENTION_DAYS") as exc:
        config.parse_retention(raw)
    assert "from 1 to 3650" in _one_line(exc)


@pytest.mark.parametrize("raw", NOT_WHOLE_NUMBERS + OUT_OF_BOUNDS + ["28"])
def test_compaction_delay_is_refused_unless_a_whole_number_within_bounds(raw):
    with pytest.raises(ConfigError, match="COMPLIANCE_COMPACTION_DELAY_DAYS") as exc:
        config.parse_compaction_delay(raw)
    assert "from 0 to 27" in _one_line(exc)


@pytest.mark.parametrize("variable", ["COMPLIANCE_RAW_RETENTION_DAYS", "COMPLIANCE_COMPACTION_DELAY_DAYS"])
@pytest.mark.parametrize("raw", ["1000000000", "1e3", "٢٨", "+28", "0x1c"])
def test_load_settings_refuses_every_bad_number(variable, raw):
    with pytest.raises(ConfigError, match=variable) as exc:
        load_settings({variable: raw})
    _one_line(exc)


@pytest.mark.parametrize(("raw", "days"), [("3650", 3650), ("\t7\n", 7), ("028", 28), ("1", 1)])
def test_retention_bounds_are_inclusive_and_whitespace_is_ignored(raw, days):
    assert config.parse_retention(raw) == days


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from(["", " ", "\t"]))
def test_any_integer_is_accepted_exactly_within_the_bounds(number, pad):
    raw = f"{pad}{number}{pad}"
    for parse, low, high in (
        (config.parse_retention, config.MIN_RETENTION_DAYS, config.MAX_RETENTION_DAYS),
        (config.parse_compaction_delay, config.MIN_COMPACTION_DELAY_DAYS, config.MAX_COMPACTION_DELAY_DAYS),
    ):
        if low <= number <= high:
            assert parse(raw) == number
        else:
            with pytest.raises(ConfigError):
                parse(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_any_text_is_a_bounded_whole_number_or_a_config_error(raw):
    """Never OverflowError/ValueError, never a value out of bounds; and an accepted value is
    exactly what its ASCII digits say (int() would take '٢٨', '+28', '2_8')."""
    try:
        days = config.parse_retention(raw)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert config.MIN_RETENTION_DAYS <= days <= config.MAX_RETENTION_DAYS
    assert raw.strip().isascii() and raw.strip().isdigit() and int(raw.strip()) == days


def test_a_retention_at_the_bound_keeps_date_arithmetic_valid_for_every_supported_day():
    from datetime import timedelta

    from pipelines.cli import FIRST_SUPPORTED_DAY, LAST_SUPPORTED_DAY

    for day in (FIRST_SUPPORTED_DAY, LAST_SUPPORTED_DAY):
        assert day - timedelta(days=config.MAX_RETENTION_DAYS) < day
        assert day - timedelta(days=config.MAX_COMPACTION_DELAY_DAYS) < day


@pytest.mark.parametrize(
    "raw",
    ["lots", "-1GB", "1e3GB", "0GB", "2 bytes", "2KB", "2PB", "99999999999999999999999GB", "٢GB", "2000", "17TiB"],
)
def test_a_bad_memory_limit_is_refused_when_the_settings_load(raw):
    with pytest.raises(ConfigError, match="COMPLIANCE_DUCKDB_MEMORY_LIMIT=.* is not a DuckDB memory size") as exc:
        load_settings({"COMPLIANCE_DUCKDB_MEMORY_LIMIT": raw})
    _one_line(exc)


@pytest.mark.parametrize(
    ("raw", "limit"),
    [(None, "2GB"), ("", ""), ("  ", ""), (" 1536MB ", "1536MB"), ("512MiB", "512MiB"), ("1.5 gb", "1.5 gb")],
)
def test_good_memory_limits(raw, limit):
    env = {} if raw is None else {"COMPLIANCE_DUCKDB_MEMORY_LIMIT": raw}
    assert load_settings(env).duckdb_memory_limit == limit


@pytest.mark.parametrize(
    ("field", "value"), [("retention_days", 1_000_000_000), ("retention_days", 0), ("compaction_delay_days", 28)]
)
def test_the_dagster_settings_resource_refuses_out_of_bounds_run_config(field, value):
    """A run launched from the UI with resource config out of bounds fails at resource
    initialisation with a validation error, not with an OverflowError in a step."""
    import pydantic

    from pipelines.resources import ComplianceSettings

    with pytest.raises(pydantic.ValidationError, match=field):
        ComplianceSettings(inbox="i", reports="r", **{field: value})
    ComplianceSettings(inbox="i", reports="r", retention_days=3650, compaction_delay_days=27)


def test_definitions_refuse_to_load_with_an_overflowing_retention(tmp_path):
    """The Dagster code location (build_resources) raises the same one-line ConfigError."""
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "COMPLIANCE_RAW_RETENTION_DAYS": "1000000000",
        "DAGSTER_HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    code = "from pipelines.resources import build_resources; build_resources()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "ConfigError: COMPLIANCE_RAW_RETENTION_DAYS must be a whole number of days from 1 to 3650" in proc.stderr
