#!/usr/bin/env python3
"""Reproducible feed-engagement events for Topologies/engagement.yaml (JSON Lines).

Fields as in Topologies/engagement.sample.jsonl: viewer_id, ts (epoch
seconds, sometimes fractional), action (watch 60%, skip 25%, like 10%,
share 5%), video, creator_id (Zipf-like over --creators, so distinct
last_n lists fill), and for watches watched_s and completion in [0, 1].
Viewers are picked uniformly at random over --days days, in time order
with up to 3 s of jitter.

    python3 Deploy/sizing/gen_engagement.py --count 200000 --viewers 20000 > engagement.jsonl
"""
import argparse, json, random, sys

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--viewers", type=int, default=20_000)
    p.add_argument("--creators", type=int, default=5_000)
    p.add_argument("--days", type=float, default=1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", type=int, default=1_767_225_600)  # 2026-01-01T00:00:00Z
    a = p.parse_args()
    rng = random.Random(a.seed)
    step_s = a.days * 86_400 / a.count
    weights = [1.0 / (i + 1) for i in range(a.creators)]
    creators = rng.choices(range(a.creators), weights=weights, k=a.count)
    out = sys.stdout
    clock = float(a.start)
    for n in range(a.count):
        clock += rng.uniform(0, 2 * step_s)
        viewer = rng.randrange(a.viewers)
        ts = clock - rng.uniform(0, 3)
        ts = round(ts, 1) if rng.random() < 0.2 else int(ts)
        r = rng.random()
        action = "watch" if r < 0.60 else ("skip" if r < 0.85 else ("like" if r < 0.95 else "share"))
        creator = creators[n]
        event = {"viewer_id": f"v{viewer:07d}", "ts": ts, "action": action,
                 "video": f"vid{creator * 100 + rng.randrange(100)}", "creator_id": f"cr{creator:05d}"}
        if action == "watch":
            length = rng.choice([15, 30, 60, 180, 600])
            completion = round(min(1.0, rng.betavariate(2, 2) * 1.2), 3)
            event["watched_s"] = round(length * completion, 1)
            event["completion"] = completion
        out.write(json.dumps(event, separators=(",", ":")) + "\n")

if __name__ == "__main__":
    main()
