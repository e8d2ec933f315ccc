#!/usr/bin/env python3
"""Verdict of the multi-host test (multihost_test.sh), from what it collected:

  <work>/chains          "<index> chains/<id>" per submitted chain
  <work>/final/<i>.json  `conveyor get --json` of chain i once it ended
  <work>/events/<i>.jsonl `conveyor watch --json` of chain i (its whole history)
  --objects DIR          the file:// upload root shared by the upload replicas
  --hook-log FILE        one JSON line per webhook the receiver got

Checks: every chain SUCCEEDED; exactly one CHAIN_SUCCEEDED event and exactly
one STEP_SUCCEEDED per step (no completed step ran twice); exactly one stored
object per chain, the one its result names, and nothing else in the store;
every chain's webhook arrived, all its deliveries with one webhook-id; every
replica of every stage did work. Prints how the load spread over replicas.
Exit 0 when all hold, 1 otherwise.
"""

import argparse
import collections
import datetime
import hashlib
import json
import os
import re
import sys

STAGE_ORDER = ["download", "resize", "filter", "upload", "webhook"]


def parse_time(text):
    if not text:
        return None
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", text)
    base = datetime.datetime.fromisoformat(match.group(1)).replace(tzinfo=datetime.timezone.utc)
    fraction = float("0." + match.group(2)) if match.group(2) else 0.0
    return base.timestamp() + fraction


def stage_of(kind):
    return kind.removeprefix("STAGE_KIND_").lower()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--objects", required=True)
    parser.add_argument("--hook-log", required=True)
    parser.add_argument("--replicas", required=True,
                        help="stage=ip,ip;stage=ip,ip  (every replica must have done work)")
    parser.add_argument("--logs", default=None,
                        help="log directory: per-orchestrator spread from orchestrator*.log")
    parser.add_argument("--require-orchestrator-spread", action="store_true",
                        help="each orchestrator must have used every replica of every stage")
    parser.add_argument("--kill-time", type=float, default=None,
                        help="epoch seconds of the SIGKILLs; some chain must span it")
    args = parser.parse_args()

    problems = []
    chains = {}  # chain id -> index
    with open(os.path.join(args.work, "chains"), encoding="utf-8") as f:
        for line in f:
            index, name = line.split()
            chain_id = name.removeprefix("chains/")
            if chain_id in chains:
                problems.append(f"chain {name} returned for two submissions "
                                f"({chains[chain_id]} and {index})")
            chains[chain_id] = index
    if not chains:
        print("multihost_check: no chains were submitted")
        return 1

    spread = collections.defaultdict(collections.Counter)
    retried_steps = 0
    spanning_kill = 0
    results = {}
    for chain_id, index in chains.items():
        final_path = os.path.join(args.work, "final", f"{index}.json")
        if not os.path.exists(final_path):
            problems.append(f"chain {chain_id}: no final state collected")
            continue
        with open(final_path, encoding="utf-8") as f:
            chain = json.load(f)
        if chain.get("state") != "SUCCEEDED":
            problems.append(f"chain {chain_id}: {chain.get('state')} "
                            f"{json.dumps(chain.get('error', {}))}")
        for step in chain.get("steps", []):
            if step.get("worker"):
                address = re.search(r"(\d+\.\d+\.\d+\.\d+)", step["worker"])
                spread[stage_of(step["kind"])][address.group(1) if address else step["worker"]] += 1
            if step.get("attempts", 0) > 1:
                retried_steps += 1
        chain_results = chain.get("results", [])
        if len(chain_results) != 1:
            problems.append(f"chain {chain_id}: {len(chain_results)} results, want 1")
        else:
            results[chain_id] = chain_results[0]
        if args.kill_time is not None:
            created, ended = parse_time(chain.get("createTime")), parse_time(chain.get("endTime"))
            if created is not None and ended is not None and created <= args.kill_time < ended:
                spanning_kill += 1

        # Exactly once, from the chain's own recorded history.
        events_path = os.path.join(args.work, "events", f"{index}.jsonl")
        succeeded_steps = collections.Counter()
        chain_succeeded = 0
        if os.path.exists(events_path):
            with open(events_path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    event = json.loads(line)
                    if event.get("type") == "STEP_SUCCEEDED":
                        succeeded_steps[event.get("stepIndex", 0)] += 1
                    elif event.get("type") == "CHAIN_SUCCEEDED":
                        chain_succeeded += 1
        if chain_succeeded != 1:
            problems.append(f"chain {chain_id}: {chain_succeeded} CHAIN_SUCCEEDED events, want 1")
        for step_index in range(len(chain.get("steps", []))):
            if succeeded_steps[step_index] != 1:
                problems.append(f"chain {chain_id}: step {step_index} succeeded "
                                f"{succeeded_steps[step_index]} times, want 1")

    # One stored object per chain, and it is the one the chain reports.
    stored = collections.defaultdict(list)
    stray = []
    for root, _, files in os.walk(args.objects):
        for name in files:
            full = os.path.join(root, name)
            match = re.match(r"^([0-9a-f]{32})-\d+\.[a-z]+$", name)
            if match and match.group(1) in chains:
                stored[match.group(1)].append(full)
            else:
                stray.append(full)
    for chain_id in chains:
        files = stored.get(chain_id, [])
        if len(files) != 1:
            problems.append(f"chain {chain_id}: {len(files)} stored objects, want 1: {files}")
            continue
        result = results.get(chain_id)
        if result:
            if result.get("uri") != "file://" + files[0]:
                problems.append(f"chain {chain_id}: result {result.get('uri')} "
                                f"but stored {files[0]}")
            if int(result.get("sizeBytes", -1)) != os.path.getsize(files[0]):
                problems.append(f"chain {chain_id}: result size {result.get('sizeBytes')} but "
                                f"the file has {os.path.getsize(files[0])} bytes")
            with open(files[0], "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if result.get("sha256") != digest:
                problems.append(f"chain {chain_id}: result sha256 {result.get('sha256')} but "
                                f"the file's is {digest}")
    if stray:
        problems.append(f"{len(stray)} stray files in the object store: {stray[:5]}")

    # Webhooks: at least once per chain, one webhook-id per chain so receivers
    # can de-duplicate the at-least-once deliveries.
    deliveries = collections.defaultdict(list)
    with open(args.hook_log, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            deliveries[record["chain"].removeprefix("chains/")].append(record)
    duplicate_deliveries = 0
    for chain_id in chains:
        got = deliveries.get(chain_id, [])
        if not got:
            problems.append(f"chain {chain_id}: no webhook delivery")
            continue
        ids = {r["webhook_id"] for r in got}
        if len(ids) != 1 or "" in ids:
            problems.append(f"chain {chain_id}: webhook ids {sorted(ids)}, want one")
        if not all(r["signature"] for r in got):
            problems.append(f"chain {chain_id}: unsigned webhook")
        duplicate_deliveries += len(got) - 1
    unknown = set(deliveries) - set(chains)
    if unknown:
        problems.append(f"webhooks for unknown chains: {sorted(unknown)[:5]}")

    # Load spread.
    expected = {}
    for part in args.replicas.split(";"):
        stage, _, addresses = part.partition("=")
        expected[stage] = addresses.split(",")
    print(f"multihost: {len(chains)} chains; steps retried: {retried_steps}; "
          f"duplicate webhook deliveries (same id): {duplicate_deliveries}")
    if args.kill_time is not None:
        print(f"multihost: chains in flight across the SIGKILLs: {spanning_kill}")
        if spanning_kill == 0:
            problems.append("no chain was in flight when the processes were killed: "
                            "the test did not test failover (raise the load)")
    print("multihost: steps per replica (last attempt's worker, from StepStatus.worker)")
    for stage in STAGE_ORDER:
        counts = spread.get(stage, collections.Counter())
        row = "  ".join(f"{address}={counts.get(address, 0)}"
                        for address in expected.get(stage, []))
        others = {a: n for a, n in counts.items() if a not in expected.get(stage, [])}
        print(f"  {stage:<9} {row}" + (f"  unexpected={others}" if others else ""))
        for address in expected.get(stage, []):
            if counts.get(address, 0) == 0:
                problems.append(f"{stage} replica {address} did no work: the load did not spread")
        if others:
            problems.append(f"{stage}: steps on unexpected workers {others}")

    # Per orchestrator, from its "step attempt" log lines: each one reaches
    # every replica through its own target (a hosts-file name for one, an
    # ipv4: address list for the other).
    if args.logs:
        per_orchestrator = collections.defaultdict(lambda: collections.defaultdict(
            collections.Counter))
        for name in sorted(os.listdir(args.logs)):
            match = re.match(r"^(orchestrator\d+)\.\d+\.log$", name)
            if not match:
                continue
            with open(os.path.join(args.logs, name), encoding="utf-8", errors="replace") as f:
                for line in f:
                    attempt = re.search(r"stage=(\w+) .*code=OK .*worker=\S*?(\d+\.\d+\.\d+\.\d+)",
                                        line)
                    if attempt:
                        per_orchestrator[match.group(1)][attempt.group(1)][attempt.group(2)] += 1
        print("multihost: successful calls per orchestrator and replica (orchestrator logs)")
        for orchestrator in sorted(per_orchestrator):
            cells = []
            for stage in STAGE_ORDER:
                counts = per_orchestrator[orchestrator][stage]
                cells.append(stage + " " + "/".join(str(counts.get(a, 0))
                                                     for a in expected.get(stage, [])))
                if args.require_orchestrator_spread:
                    for address in expected.get(stage, []):
                        if counts.get(address, 0) == 0:
                            problems.append(f"{orchestrator} never called {stage} replica "
                                            f"{address}: its target does not reach both")
            print(f"  {orchestrator}: " + "  ".join(cells))
        if args.require_orchestrator_spread and len(per_orchestrator) < 2:
            problems.append("no 'step attempt' lines from both orchestrators in their logs")

    if problems:
        print(f"multihost: FAILED, {len(problems)} problems:")
        for problem in problems[:40]:
            print(f"  - {problem}")
        return 1
    print("multihost: OK: every chain SUCCEEDED once, one object per chain, "
          "no step ran twice after succeeding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
