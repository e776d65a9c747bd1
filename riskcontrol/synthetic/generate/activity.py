"""App/device events before each application and customer-service notes.

Behaviour leaks a little of the latent risk: risky customers are more active at night,
run the loan calculator and press "apply" more, hop between devices and sometimes share
a device with other customers; their notes more often mention hardship. Customers in
arrears get collection notes after the fact (which a model must not use as features).
From the book's 13th month events carry a ``geo`` object (the schema drift of this feed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskcontrol.synthetic.generate import reference as ref
from riskcontrol.synthetic.generate.dates import DAY, Calendar, format_timestamps, month_index
from riskcontrol.synthetic.generate.lending import Applications, Loans
from riskcontrol.synthetic.generate.population import Population, draw_clock
from riskcontrol.synthetic.generate.rng import KeyedRandom, ragged_index, sigmoid

MALFORMED_EVENT_RATE = 0.002
MISSING_NOTE_HEADER_RATE = 0.005
_EVENT_WEIGHTS = np.log([0.3, 0.3, 0.12, 0.08, 0.1, 0.1])
_FIRST_VERSION_MAJOR = 5


@dataclass
class Lines:
    """Output lines of one monthly-file kind, with the month index each belongs to."""

    month: np.ndarray
    text: list[str]
    faults: int


def truncate(rng: KeyedRandom, keys: np.ndarray, lines: list[str]) -> list[str]:
    """Cut JSON lines short before their closing brace: each becomes invalid JSON."""
    cuts = rng.uniform(keys, "cut")
    return [
        line[: 1 + int(c * (len(line) - 3))] + "\n"
        for line, c in zip(lines, cuts.tolist(), strict=True)
    ]


def _device_ids(bits: np.ndarray) -> list[str]:
    """'D' + 12 hex digits from random bits."""
    return [f"D{b >> 16:012x}" for b in bits.tolist()]


def event_lines(
    seed: int,
    pop: Population,
    apps: Applications,
    cal: Calendar,
    first_event: int,
    n_customers: int,
) -> Lines:
    """3-8 events per application in the 30 days before it, ids from ``first_event``."""
    rng = KeyedRandom(seed, "event")
    z_app = pop.z[apps.customer]
    more = sum(
        rng.bernoulli(apps.key, sigmoid(-0.6 + 0.5 * z_app), f"more{j}").astype(np.int64)
        for j in range(5)
    )
    parent, rank = ragged_index(3 + more)
    key = apps.key[parent] * 16 + rank
    cust = apps.customer[parent]
    z = pop.z[cust]
    applied = apps.applied_ts[parent]
    clock = draw_clock(rng, key, sigmoid(-2.0 + 0.7 * z), "event")
    ts = (applied // DAY - rng.integers(key, 0, 30, "days_before")) * DAY + clock
    ts = np.where(ts >= applied, ts - DAY, ts)
    order = np.lexsort((ts, parent))
    key, cust, z, ts, parent = key[order], cust[order], z[order], ts[order], parent[order]

    type_logits = np.zeros((len(key), len(ref.EVENT_TYPES))) + _EVENT_WEIGHTS
    type_logits[:, 2] += 0.5 * z
    type_logits[:, 3] += 0.4 * z
    type_p = np.exp(type_logits)
    etype = rng.choice(key, type_p / type_p.sum(axis=1, keepdims=True), "type")

    crng = KeyedRandom(seed, "device")
    cidx = pop.index[cust]
    farm_member = crng.bernoulli(cidx, sigmoid(-5.0 + 1.5 * z), "farm_member")
    n_farm = max(20, n_customers // 2000)
    farm = farm_member & rng.bernoulli(key, 0.5, "use_farm")
    second = ~farm & rng.bernoulli(key, sigmoid(-2.5 + 0.8 * z), "second_device")
    device_bits = np.where(
        farm,
        crng.bits(crng.integers(cidx, 0, n_farm, "farm_device"), "farm"),
        np.where(second, crng.bits(cidx, "device2"), crng.bits(cidx, "device")),
    )
    ios = ~farm & crng.bernoulli(
        cidx, sigmoid(-0.8 + 0.8 * np.log(pop.income[cust] / 6500.0)), "ios"
    )
    month = month_index(ts // DAY)
    lag = np.minimum((-np.log(rng.uniform(key, "version_lag")) * 1.5).astype(np.int64), 6)
    version = np.maximum(month - cal.first_month + 1 - lag, 0)
    duration = np.clip(np.exp(3.0 + 0.8 * rng.normal(key, "duration")), 1, 3600).astype(np.int64)
    night = (ts % DAY) < 6 * 3600
    moved = rng.bernoulli(key, sigmoid(-3.0 + 0.8 * z), "geo_moved")
    geo_city = np.where(moved, rng.choice(key, ref.CITY_WEIGHTS, "geo_city"), pop.city[cust])

    # A template instead of json.dumps, for speed on the biggest feed: every value is an
    # id, a number or a fixed vocabulary word, none of which needs JSON escaping.
    versions = [
        f"{_FIRST_VERSION_MAJOR + v // 12}.{(v % 12) // 3}.{v % 3}"
        for v in range(version.max() + 1)
    ]
    geo = [
        f',"geo":{{"province":"{p}","city":"{c}"}}'
        for p, c in zip(ref.CITY_PROVINCE, ref.CITY_NAME, strict=True)
    ]
    geo_or_none = np.where(month >= cal.drift_month, geo_city, -1).tolist()
    text = [
        f'{{"event_id":"E{first_event + i + 1:012d}","customer_id":"{pop.customer_id[c]}",'
        f'"device_id":"{d}","event_type":"{ref.EVENT_TYPES[e]}","ts":"{t}",'
        f'"os":"{"ios" if io else "android"}","app_version":"{versions[v]}",'
        f'"props":{{"duration_s":{du},"night":{"true" if ni else "false"}}}'
        f"{geo[g] if g >= 0 else ''}}}\n"
        for i, (t, c, d, e, io, v, du, ni, g) in enumerate(
            zip(
                format_timestamps(ts),
                cust.tolist(),
                _device_ids(device_bits),
                etype.tolist(),
                ios.tolist(),
                version.tolist(),
                duration.tolist(),
                night.tolist(),
                geo_or_none,
                strict=True,
            )
        )
    ]
    bad = np.flatnonzero(rng.bernoulli(key, MALFORMED_EVENT_RATE, "malformed"))
    for i, cut in zip(bad.tolist(), truncate(rng, key[bad], [text[i] for i in bad]), strict=True):
        text[i] = cut
    return Lines(month=month, text=text, faults=len(bad))


def note_records(
    seed: int, pop: Population, apps: Applications, loans: Loans, cal: Calendar, first_note: int
) -> Lines:
    """Customer-service notes: background notes plus collection notes for loans in arrears."""
    rng = KeyedRandom(seed, "note")
    as_of_ts = cal.as_of_day * DAY
    n_bg = np.minimum(rng.poisson(pop.index, 0.5 * np.exp(0.35 * pop.z), "count"), 12)
    bg_cust, bg_rank = ragged_index(n_bg)
    bg_key = pop.index[bg_cust] * 64 + bg_rank
    lo = np.maximum(pop.registered_ts[bg_cust], cal.start_day * DAY)
    bg_ts = lo + (rng.uniform(bg_key, "at") * (as_of_ts - lo)).astype(np.int64)
    risky = rng.bernoulli(bg_key, sigmoid(-1.6 + 1.0 * pop.z[bg_cust]), "risky")
    bg_pool = np.where(risky, 1, 0)

    arrears = np.flatnonzero(loans.trouble_day >= 0)
    arng = KeyedRandom(seed, "arrears_note")
    loan_key = apps.key[loans.app[arrears]]
    ar_parent, ar_rank = ragged_index(1 + arng.integers(loan_key, 0, 3, "count"))
    ar_key = loan_key[ar_parent] * 4 + ar_rank
    ar_ts = (
        loans.trouble_day[arrears][ar_parent] + 3 + arng.integers(ar_key, 0, 60, "days_after")
    ) * DAY + arng.integers(ar_key, 8 * 3600, 20 * 3600, "clock")
    keep = ar_ts < as_of_ts
    ar_cust = apps.customer[loans.app[arrears]][ar_parent][keep]
    ar_key, ar_ts = ar_key[keep], ar_ts[keep]

    cust = np.concatenate([bg_cust, ar_cust])
    ts = np.concatenate([bg_ts, ar_ts])
    pool = np.concatenate([bg_pool, np.full(len(ar_cust), 2)])
    # keys of the two kinds live in disjoint ranges: background below 2**62
    key = np.concatenate([bg_key, ar_key + (1 << 62)]).astype(np.uint64)
    order = np.lexsort((key, ts, cust))
    cust, ts, pool, key = cust[order], ts[order], pool[order], key[order]

    trng = KeyedRandom(seed, "note_text")
    n_lines = 1 + trng.integers(key, 0, 3, "lines")
    first_line = trng.uniform(key, "first")
    step = 1 + 2 * trng.integers(key, 0, 2, "step")  # 1 or 3: coprime to every pool size
    agent = 1 + trng.integers(key, 0, 120, "agent")
    channel = trng.integers(key, 0, len(ref.NOTE_CHANNELS), "channel")
    headerless = trng.bernoulli(key, MISSING_NOTE_HEADER_RATE, "no_header")
    pools = (ref.NOTE_NEUTRAL, ref.NOTE_RISKY, ref.NOTE_ARREARS)
    times = format_timestamps(ts)
    text = []
    for i, (c, t, p, nl, f, s, a, ch, h) in enumerate(
        zip(
            cust.tolist(),
            times,
            pool.tolist(),
            n_lines.tolist(),
            first_line.tolist(),
            step.tolist(),
            agent.tolist(),
            channel.tolist(),
            headerless.tolist(),
            strict=True,
        )
    ):
        phrases = pools[p]
        start = int(f * len(phrases))
        body = "".join(phrases[(start + j * s) % len(phrases)] + "\n" for j in range(nl))
        header = (
            f"#NOTE id=N{first_note + i + 1:08d} customer={pop.customer_id[c]} time={t} "
            f"agent=A{a:03d} channel={ref.NOTE_CHANNELS[ch]}\n"
        )
        text.append(body if h else header + body)
    return Lines(month=month_index(ts // DAY), text=text, faults=int(headerless.sum()))
