"""`api.Column.translate_type` for sqlfluff's jinja templater (DuckDB's names)."""


class Column:
    @staticmethod
    def translate_type(dtype):
        return {"string": "varchar"}.get(dtype, dtype)
