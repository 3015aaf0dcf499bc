"""The throttle's FIFO gates: free path, arrival order, cancellation before and after hand-over."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from tokensmith.server.services.throttle_gates import Gates, Mutex

pytestmark = pytest.mark.anyio


async def _spin(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_a_free_key_is_taken_without_yielding() -> None:
    gates = Gates()
    task = asyncio.current_task()
    assert task is not None
    task.cancel()  # a pending cancellation is delivered at the first real yield only
    await gates.acquire("a")
    assert gates.held("a") and len(gates) == 1
    gates.release("a")
    assert len(gates) == 0
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(0)
    task.uncancel()


async def test_keys_are_independent_and_release_of_a_free_key_fails() -> None:
    gates = Gates()
    await gates.acquire("a")
    with anyio.fail_after(1):
        await gates.acquire("b")  # another key does not wait
    gates.release("a")
    gates.release("b")
    with pytest.raises(KeyError):
        gates.release("a")


async def test_waiters_are_served_in_arrival_order() -> None:
    gates = Gates()
    order: list[int] = []

    async def worker(i: int) -> None:
        await gates.acquire("k")
        order.append(i)
        await _spin(2)  # hold it across yields
        gates.release("k")

    await gates.acquire("k")
    async with anyio.create_task_group() as group:
        for i in range(5):
            group.start_soon(worker, i)
            await _spin(1)  # start them in order
        await _spin()
        assert order == [] and gates.waiting("k") == 5
        gates.release("k")
    assert order == [0, 1, 2, 3, 4]
    assert len(gates) == 0


async def test_nobody_slips_in_between_a_release_and_the_next_waiter() -> None:
    gates = Gates()
    await gates.acquire("k")
    got: list[str] = []

    async def waiter() -> None:
        await gates.acquire("k")
        got.append("waiter")

    task = asyncio.create_task(waiter())
    await _spin()
    gates.release("k")  # handed to the waiter, which has not run yet
    assert gates.held("k")
    barger = asyncio.create_task(gates.acquire("k"))
    await _spin()
    assert got == ["waiter"] and not barger.done()
    await task
    gates.release("k")  # the waiter's turn ends: the barger's begins
    await asyncio.wait_for(barger, 1)
    gates.release("k")
    assert len(gates) == 0


async def test_a_waiter_cancelled_while_waiting_leaves_the_queue() -> None:
    gates = Gates()
    await gates.acquire("k")
    first = asyncio.create_task(gates.acquire("k"))
    second = asyncio.create_task(gates.acquire("k"))
    await _spin()
    first.cancel()
    await _spin()
    assert first.cancelled() and gates.waiting("k") == 1
    gates.release("k")
    await asyncio.wait_for(second, 1)  # the next live waiter gets it: no deadlock
    gates.release("k")
    assert len(gates) == 0


async def test_a_waiter_cancelled_before_it_leaves_is_skipped() -> None:
    gates = Gates()
    await gates.acquire("k")
    first = asyncio.create_task(gates.acquire("k"))
    second = asyncio.create_task(gates.acquire("k"))
    await _spin()
    first.cancel()  # its future is cancelled; its task has not run its cleanup yet
    gates.release("k")  # skips it, hands the key to the second
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
    gates.release("k")
    assert len(gates) == 0


async def test_a_waiter_cancelled_after_the_hand_over_passes_the_key_on() -> None:
    gates = Gates()
    await gates.acquire("k")
    first = asyncio.create_task(gates.acquire("k"))
    second = asyncio.create_task(gates.acquire("k"))
    await _spin()
    gates.release("k")  # handed to the first, which has not run yet
    first.cancel()  # cancelled before it resumes: it must not keep the key
    await _spin()
    assert first.cancelled()
    await asyncio.wait_for(second, 1)
    gates.release("k")
    assert len(gates) == 0
    # Nobody waiting behind it: the key is simply freed.
    await gates.acquire("k")
    lone = asyncio.create_task(gates.acquire("k"))
    await _spin()
    gates.release("k")
    lone.cancel()
    await _spin()
    assert lone.cancelled() and len(gates) == 0


async def test_an_anyio_cancel_scope_around_a_waiter_leaks_nothing() -> None:
    gates = Gates()
    await gates.acquire("k")
    with anyio.move_on_after(0.01):
        await gates.acquire("k")
    assert gates.waiting("k") == 0
    gates.release("k")
    assert len(gates) == 0


async def test_mutex_serializes_in_order() -> None:
    mutex = Mutex()
    order: list[int] = []

    async def worker(i: int) -> None:
        async with mutex:
            order.append(i)
            await _spin(2)
            order.append(i)

    async with anyio.create_task_group() as group:
        for i in range(3):
            group.start_soon(worker, i)
    assert order == [0, 0, 1, 1, 2, 2]
    assert not mutex.locked()
    with pytest.raises(RuntimeError):
        async with mutex:
            raise RuntimeError("the body fails")
    assert not mutex.locked()  # released on the way out
