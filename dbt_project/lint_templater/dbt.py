"""dbt's cross-database macros the models call, as dbt-duckdb renders them, for sqlfluff's jinja
templater (it lints without dbt, so these stand in for dbt's own)."""


def hash(field):  # noqa: A001 - dbt's macro name
    return f"md5(cast({field} as varchar))"


def concat(fields):
    return " || ".join(fields)


def safe_cast(field, data_type):
    return f"try_cast({field} as {data_type})"


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def current_timestamp():
    return "now()"
