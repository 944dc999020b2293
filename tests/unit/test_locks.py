"""The per-container locks: exclusive while held, forgotten once free."""

from __future__ import annotations

import threading
import time

from app.store.db import KeyedLocks


def test_one_key_is_held_by_one_thread_at_a_time() -> None:
    """A second holder of the same key waits for the first."""
    locks = KeyedLocks()
    inside: list[int] = []
    overlap: list[bool] = []

    def hold() -> None:
        with locks.hold("container:t/a"):
            overlap.append(bool(inside))
            inside.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert overlap == [False] * 4


def test_different_keys_do_not_wait_on_each_other() -> None:
    """Holding one key leaves another free."""
    locks = KeyedLocks()
    entered = threading.Event()

    def hold_b() -> None:
        with locks.hold("container:t/b"):
            entered.set()

    with locks.hold("container:t/a"):
        thread = threading.Thread(target=hold_b)
        thread.start()
        got_b = entered.wait(1)
    thread.join()

    assert got_b


def test_a_free_lock_is_forgotten() -> None:
    """No lock per container ever made is kept once nobody holds it."""
    locks = KeyedLocks()

    for i in range(100):
        with locks.hold(f"container:t/{i}"):
            pass

    assert locks._locks == {}
