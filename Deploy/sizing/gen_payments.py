#!/usr/bin/env python3
"""Reproducible card-payment events for Topologies/payments.yaml (JSON Lines).

Fields as in Topologies/payments.sample.jsonl: id, card.id, card.country,
created_at (RFC 3339, milliseconds, UTC), amount, status, merchant.id,
merchant.country. Cards are used uniformly at random over --days days, in
time order with up to 5 s of jitter; amounts are log-normal (median ~30,
a few percent >= 500); 92% approved, 6% declined, 2% blocked; 85% of
payments in the card's home country.

    python3 Deploy/sizing/gen_payments.py --count 200000 --cards 20000 > payments.jsonl
"""
import argparse, datetime, json, random, sys

COUNTRIES = ["DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "BR", "IN", "JP", "CA", "SE", "AT", "BE", "CH"]

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--cards", type=int, default=20_000)
    p.add_argument("--days", type=float, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", default="2026-01-01T00:00:00+00:00")
    a = p.parse_args()
    rng = random.Random(a.seed)
    start = datetime.datetime.fromisoformat(a.start)
    step_ms = a.days * 86_400_000 / a.count
    home = [rng.choice(COUNTRIES[:8]) for _ in range(a.cards)]
    out = sys.stdout
    clock = 0.0
    for n in range(a.count):
        clock += rng.uniform(0, 2 * step_ms)
        card = rng.randrange(a.cards)
        ts = start + datetime.timedelta(milliseconds=int(clock - rng.uniform(0, 5000)))
        amount = round(min(rng.lognormvariate(3.4, 1.3), 20_000), 2)
        r = rng.random()
        status = "approved" if r < 0.92 else ("declined" if r < 0.98 else "blocked")
        country = home[card] if rng.random() < 0.85 else rng.choice(COUNTRIES)
        event = {
            "id": f"t{n}",
            "card": {"id": f"c{card:07d}", "country": home[card]},
            "created_at": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "amount": amount,
            "status": status,
            "merchant": {"id": f"m{rng.randrange(200_000):06d}", "country": country},
        }
        out.write(json.dumps(event, separators=(",", ":")) + "\n")

if __name__ == "__main__":
    main()
