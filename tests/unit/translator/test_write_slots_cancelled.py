"""A tenant whose wait for a write slot is cancelled (its partition revoked) while another
releases a slot: the release grants the next waiter, never the cancelled one, and no slot is
lost. Before the fix the release raised InvalidStateError (setting the cancelled waiter's
result) with the slot already counted as taken: every such race lost a slot for good, and the
translator stalled once all were gone (seen in bench.scale at 20,000 Ingresses)."""

from __future__ import annotations

import asyncio

from ripple_translator.scheduling import WriteSlots


async def test_a_release_racing_a_cancelled_waiter_loses_no_slot() -> None:
    slots = WriteSlots(1)
    await slots.acquire("a")
    cancelled = asyncio.create_task(slots.acquire("b"))
    await asyncio.sleep(0)  # b waits for the slot
    cancelled.cancel()  # its waiter is cancelled now; its acquire resumes later
    slots.release("a", cost=0.0)
    await asyncio.gather(cancelled, return_exceptions=True)

    after = asyncio.create_task(slots.acquire("c"))
    await asyncio.wait_for(after, 1.0)  # the freed slot is there
    third = asyncio.create_task(slots.acquire("d"))
    await asyncio.sleep(0.01)
    assert not third.done()  # and only one: capacity kept
    slots.release("c", cost=0.0)
    await asyncio.wait_for(third, 1.0)
