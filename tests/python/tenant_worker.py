"""A tenant's Temporal worker and client, as a customer would write them (Python SDK).

Connects to a Tessera namespace endpoint over mTLS, runs a worker, and executes a workflow
with an activity and a timer to completion. Prints one JSON line and exits 0 on success;
exits 1 with the error on stderr otherwise. With --check it only connects and describes the
namespace (used to show that a certificate is refused). With --steady STOP_FILE it keeps
running workflows one after another until STOP_FILE exists, and reports how many ran and how
many calls failed (used to show that a rollout restarting the runtime fails no call). With
--orders RATE --stop STOP_FILE it runs order workflows (activity, signal, 20 s timer, child)
and a schedule, and checks every history at the end (used to show that a live migration
loses, repeats and skips nothing).
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    TLSConfig,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker


@activity.defn
async def compose_greeting(name: str) -> str:
    return f"hello, {name}"


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.sleep(timedelta(seconds=1))
        return f"{greeting} (after a timer)"


@workflow.defn
class ChildWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class OrderWorkflow:
    """An activity, a signal, a 20 s durable timer and a child workflow."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self.approved)
        await workflow.sleep(timedelta(seconds=20))
        child = await workflow.execute_child_workflow(
            ChildWorkflow.run, name, id=f"{workflow.info().workflow_id}-child"
        )
        return f"{greeting}; {child}"


@workflow.defn
class TickWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


TICK_SECONDS = 5


async def orders(client: Client, task_queue: str, rate: float, stop_file: str,
                 snapshot: str | None) -> None:
    """Starts `rate` order workflows a second (each approved by a signal a second later) and a
    schedule that fires every 5 s, until `stop_file` appears. When `<snapshot>.take` appears,
    writes the event counts of the workflows closed by then to `snapshot`. At the end, waits
    for every acknowledged workflow and reports: failed calls, workflows that never
    completed, any whose timer, child or completion is not exactly one event, closed
    workflows whose history changed since the snapshot, and the schedule's actions with the
    largest gap between two of them."""
    failures, errors, handles, calls = 0, [], [], 0

    async def call(what):
        nonlocal failures, calls
        calls += 1
        try:
            return await what
        except Exception as e:  # noqa: BLE001 - counted and reported
            failures += 1
            errors.append(f"{type(e).__name__}: {e!r}")
            return None

    async def order(n: int) -> None:
        h = await call(client.start_workflow(
            OrderWorkflow.run, f"order {n}", id=f"order-{n}-{uuid.uuid4()}",
            task_queue=task_queue, execution_timeout=timedelta(seconds=600)))
        if h is None:
            return
        handles.append(h)
        await asyncio.sleep(1)
        await call(h.signal(OrderWorkflow.approve))

    async def events(workflow_id: str):
        return (await client.get_workflow_handle(workflow_id).fetch_history()).events

    async def take_snapshot() -> None:
        counts = {}
        for h in list(handles):
            d = await call(h.describe())
            if d is not None and d.status.name == "COMPLETED":
                counts[h.id] = len(await events(h.id))
        with open(snapshot + ".part", "w") as f:
            json.dump(counts, f)
        os.rename(snapshot + ".part", snapshot)

    schedule_id = f"tick-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow, ChildWorkflow, TickWorkflow],
        activities=[compose_greeting],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_workflow_tasks=50,
    ):
        await client.create_schedule(schedule_id, Schedule(
            action=ScheduleActionStartWorkflow(TickWorkflow.run, id=schedule_id,
                                               task_queue=task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
                every=timedelta(seconds=TICK_SECONDS))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL)))
        print(json.dumps({"ready": True}), flush=True)
        tasks, n, begin, snapshot_task = [], 0, time.monotonic(), None
        while not os.path.exists(stop_file):
            tasks.append(asyncio.create_task(order(n)))
            n += 1
            if snapshot and snapshot_task is None and os.path.exists(snapshot + ".take"):
                snapshot_task = asyncio.create_task(take_snapshot())
            await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
        await asyncio.gather(*tasks)
        if snapshot_task:
            await snapshot_task
        await call(client.get_schedule_handle(schedule_id).pause())

        limit = asyncio.Semaphore(20)

        async def check(h) -> dict:
            async with limit:
                try:
                    await asyncio.wait_for(h.result(), timeout=120)
                except Exception as e:  # noqa: BLE001 - reported
                    return {"id": h.id, "lost": f"{type(e).__name__}: {e!r}"}
                kinds = [e.WhichOneof("attributes") for e in await events(h.id)]
                return {"id": h.id, "events": len(kinds), "once": all(kinds.count(k) == 1 for k in (
                    "timer_fired_event_attributes",
                    "child_workflow_execution_completed_event_attributes",
                    "workflow_execution_signaled_event_attributes",
                    "workflow_execution_completed_event_attributes"))}

        checked = await asyncio.gather(*map(check, handles))
        before = {}
        if snapshot and os.path.exists(snapshot):
            with open(snapshot) as f:
                before = json.load(f)
        # Nominal times of the schedule's actions: the workflow ids end with them.
        ticks = sorted([w.id[len(schedule_id) + 1:] async for w in client.list_workflows(
            f"WorkflowType = 'TickWorkflow' AND WorkflowId STARTS_WITH '{schedule_id}'")])
        times = [datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in ticks]
        gaps = [b - a for a, b in zip(times, times[1:])]
        print(json.dumps({
            "starts": len(handles), "calls": calls,
            "failures": failures, "errors": errors[:5],
            "lost": [c for c in checked if "lost" in c][:5],
            "completed": sum(1 for c in checked if "events" in c),
            "not_exactly_once": [c["id"] for c in checked if c.get("once") is False][:5],
            "snapshot": len(before),
            "history_changed": [c["id"] for c in checked
                                if c["id"] in before and before[c["id"]] != c.get("events")][:5],
            "schedule_actions": len(times),
            "schedule_span_seconds": (times[-1] - times[0]) if times else 0,
            "schedule_max_gap_seconds": max(gaps, default=0.0),
        }), flush=True)


async def steady(client: Client, task_queue: str, stop_file: str) -> None:
    """Runs workflows back to back until `stop_file` appears; every failure is counted, and
    the longest time between two completed workflows (a stall clients saw) is reported."""
    runs, failures, errors, ids = 0, 0, [], []
    last, longest = None, 0.0
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_greeting],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        print(json.dumps({"ready": True}), flush=True)
        while not os.path.exists(stop_file):
            workflow_id = f"steady-{uuid.uuid4()}"
            try:
                await client.execute_workflow(
                    GreetingWorkflow.run,
                    f"run {runs}",
                    id=workflow_id,
                    task_queue=task_queue,
                    execution_timeout=timedelta(seconds=60),
                )
                ids.append(workflow_id)
                now = time.monotonic()
                if last is not None:
                    longest = max(longest, now - last)
                last = now
            except Exception as e:  # noqa: BLE001 - counted and reported
                failures += 1
                errors.append(f"{type(e).__name__}: {e!r}")
            runs += 1
    print(json.dumps({"runs": runs, "failures": failures, "errors": errors[:5],
                      "longest_gap_seconds": round(longest, 3), "first": ids[:1], "last": ids[-1:]}))


async def fill(client: Client, task_queue: str, megabytes: int) -> None:
    """Grows the store by about `megabytes`: workflows with a 256 KiB input each, run to the end."""
    blob = "x" * (256 << 10)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_greeting],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        for batch in range(0, megabytes * 4, 20):
            await asyncio.gather(*(
                client.execute_workflow(
                    GreetingWorkflow.run, blob, id=f"fill-{batch + i}-{uuid.uuid4()}",
                    task_queue=task_queue, execution_timeout=timedelta(seconds=120))
                for i in range(20)))
    print(json.dumps({"filled_mb": megabytes}))


async def load(client: Client, task_queue: str, rate: float, stop_file: str) -> None:
    """Starts `rate` workflows a second until `stop_file` appears, then waits for every
    acknowledged one to complete. Reports each acknowledgement's time (Unix seconds), the
    failed starts, and the acknowledged workflows that never completed (lost)."""
    acks, failures, errors, handles = [], 0, [], []

    async def start(n: int) -> None:
        nonlocal failures
        try:
            h = await client.start_workflow(
                GreetingWorkflow.run, f"load {n}", id=f"load-{n}-{uuid.uuid4()}",
                task_queue=task_queue, execution_timeout=timedelta(seconds=300))
            acks.append(time.time())
            handles.append(h)
        except Exception as e:  # noqa: BLE001 - counted and reported
            failures += 1
            errors.append(f"{type(e).__name__}: {e!r}")

    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_greeting],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_workflow_tasks=50,
    ):
        print(json.dumps({"ready": True}), flush=True)
        tasks, n, begin = [], 0, time.monotonic()
        while not os.path.exists(stop_file):
            tasks.append(asyncio.create_task(start(n)))
            n += 1
            await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
        await asyncio.gather(*tasks)
        # Every acknowledged workflow gets 120 s to complete, 50 waited for at a time.
        limit = asyncio.Semaphore(50)

        async def outcome(h) -> str | None:
            async with limit:
                try:
                    await asyncio.wait_for(h.result(), timeout=120)
                    return None
                except Exception as e:  # noqa: BLE001 - counted and reported
                    return f"{h.id}: {type(e).__name__}: {e!r}"

        missing = [e for e in await asyncio.gather(*map(outcome, handles)) if e]
        lost = len(missing)
        errors.extend(missing)
        # Reported before the worker shuts down, so that a slow shutdown loses nothing.
        print(json.dumps({"starts": n, "failures": failures, "lost": lost, "errors": errors[:5],
                          "acks": sorted(acks)}), flush=True)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--server-name", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--server-ca", required=True)
    p.add_argument("--check", action="store_true")
    p.add_argument("--steady", metavar="STOP_FILE")
    p.add_argument("--describe", metavar="WORKFLOW_ID", help="print a workflow's status and result")
    p.add_argument("--fill", metavar="MB", type=int, help="grow the store by about MB megabytes")
    p.add_argument("--load", metavar="PER_SECOND", type=float, help="start workflows at this rate")
    p.add_argument("--orders", metavar="PER_SECOND", type=float,
                   help="start order workflows (signal, 20 s timer, child) and a schedule")
    p.add_argument("--stop", metavar="STOP_FILE",
                   help="with --load or --orders: stop when this file exists")
    p.add_argument("--snapshot", metavar="FILE",
                   help="with --orders: closed workflows' event counts, once FILE.take exists")
    a = p.parse_args()

    client = await Client.connect(
        a.address,
        namespace=a.namespace,
        tls=TLSConfig(
            domain=a.server_name,
            server_root_ca_cert=read(a.server_ca),
            client_cert=read(a.cert),
            client_private_key=read(a.key),
        ),
    )
    if a.check:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=a.namespace)
        )
        print(json.dumps({"connected": True}))
        return

    if a.describe:
        handle = client.get_workflow_handle(a.describe)
        d = await handle.describe()
        result = await handle.result() if d.status.name == "COMPLETED" else None
        print(json.dumps({"workflow_id": a.describe, "status": d.status.name, "result": result}))
        return

    task_queue = f"greetings-{uuid.uuid4()}"
    if a.steady:
        await steady(client, task_queue, a.steady)
        return
    if a.fill:
        await fill(client, task_queue, a.fill)
        return
    if a.load:
        await load(client, task_queue, a.load, a.stop)
        return
    if a.orders:
        await orders(client, task_queue, a.orders, a.stop, a.snapshot)
        return
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_greeting],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            GreetingWorkflow.run,
            "tessera",
            id=f"greeting-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        result = await handle.result()
        history = await handle.fetch_history()
        kinds = sorted(
            {e.WhichOneof("attributes") for e in history.events if e.WhichOneof("attributes")}
        )
    print(json.dumps({"result": result, "workflow_id": handle.id, "events": kinds}))


if __name__ == "__main__":
    try:
        long_running = any(a in sys.argv for a in ("--steady", "--load", "--fill", "--orders"))
        timeout = 1800 if long_running else 90
        asyncio.run(asyncio.wait_for(main(), timeout=timeout))
        code = 0
    except Exception as e:  # noqa: BLE001 - the test reads the message
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: the SDK's native runtime can abort while its threads are
    # torn down at exit, after the work is done.
    os._exit(code)
