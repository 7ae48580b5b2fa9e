"""Counts said in words, as every message of bisectlab says them."""


def counted(n: int, one: str, many: str | None = None) -> str:
    """'1 test', '2 tests': a count with its noun (``many``: a plural that is not one + 's')."""
    return f"{n} {one if n == 1 else many or one + 's'}"
