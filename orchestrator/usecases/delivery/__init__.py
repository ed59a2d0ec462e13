"""Deliveries: from approval to every channel live, exactly once.

    staging    approval makes one delivery per channel; a worker stages them all
    gate       when every channel is staged and nothing holds it, the release goes live
    firing     every staged channel published at one instant
    follow_up  reconcile an unknown outcome, confirm an asynchronous publish, settle the release
    claims     the mechanics of every step: claim and fence, attempts, states, retries
    signed     nothing but what was signed off is sent
    adapters   warm adapters, one per channel configuration, carried from step to step

Every step is: claim in one transaction (compare-and-set, fence + 1), call the adapter
outside any transaction, record the outcome in one transaction that checks the fence.
A duplicate task finds nothing to claim and does nothing.
"""
