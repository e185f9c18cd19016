"""A backfill reads Blue Cherry's next page while it stores or computes the one before (read_ahead.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connectors.bluecherry.read_ahead import read_ahead


def test_every_page_arrives_once_and_in_order() -> None:
    assert list(read_ahead(iter([[1, 2], [3], [], [4]]))) == [[1, 2], [3], [], [4]]
    assert list(read_ahead(iter([]))) == []


def test_the_next_page_is_fetched_while_the_caller_holds_this_one() -> None:
    asked: list[int] = []
    second_asked = threading.Event()

    def pages() -> Iterator[int]:
        for number in (1, 2, 3):
            asked.append(number)
            if number == 2:
                second_asked.set()
            yield number

    reader = read_ahead(pages())
    assert next(reader) == 1
    # the caller has not asked for page 2: it is being read anyway
    assert second_asked.wait(5), "page 2 was not read ahead"
    assert asked == [1, 2]  # one page ahead, not more
    assert list(reader) == [2, 3]


def test_an_error_reading_a_page_reaches_the_caller_after_the_pages_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("Blue Cherry answered 503 for page 3")

    reader = read_ahead(pages())
    assert next(reader) == 1
    assert next(reader) == 2
    with pytest.raises(ConnectionError, match="page 3"):
        next(reader)


def test_a_caller_that_stops_early_closes_the_listing() -> None:
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.set()

    reader = read_ahead(pages())
    assert next(reader) == 0
    reader.close()
    assert closed.is_set()
