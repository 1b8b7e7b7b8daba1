#!/usr/bin/env python3
"""OpenSkill Plackett-Luce reference vectors for the `weights` crate, computed by the PyPI
`openskill` package itself (the Covenant-72B run pinned openskill 6.1.3).

It installs nothing: run it with the interpreter of the venv `scripts/setup-openskill.sh` prepares
(`$HOME/.cache/covenant-rs/openskill/venv/bin/python`).

    openskill_vectors.py generate > openskill_vectors.json   # the committed fixture
    openskill_vectors.py rate < sequences.json               # fills in results (live test)

A *sequence* is a pool of players who all start at `model.rating()` and play matches ("windows")
one after the other, keeping their ratings between matches, exactly as templar's validator calls
the library: `PlackettLuce(beta=7, tau=0.1).rate([[r] for r in ratings], scores=scores)`.
Each window names the players taking part (indices into the pool) and their scores (higher is
better; -99 is a missing gradient). `rate` fills in, per window, the ratings before and after.
"""

import argparse
import json
import random
import sys
from importlib.metadata import version

from openskill.models import PlackettLuce

BETA = 7.0
TAU = 0.1
EXPECTED_VERSION = "6.1.3"


def model():
    return PlackettLuce(beta=BETA, tau=TAU)


def run_sequences(sequences):
    m = model()
    for seq in sequences:
        pool = [m.rating(name=str(i)) for i in range(seq["players"])]
        for w in seq["windows"]:
            players = w["players"]
            w["before"] = [[pool[i].mu, pool[i].sigma] for i in players]
            rated = m.rate([[pool[i]] for i in players], scores=list(w["scores"]))
            for i, team in zip(players, rated):
                pool[i] = team[0]
            w["after"] = [[pool[i].mu, pool[i].sigma] for i in players]
    return sequences


def random_scores(rng, n):
    """Gradient-score-like values with the cases that matter: ties, -99 (missing or invalid),
    exact zeros (openskill ranks a 0 score by its position), negatives."""
    scores = []
    for _ in range(n):
        u = rng.random()
        if u < 0.15:
            scores.append(-99.0)
        elif u < 0.22:
            scores.append(0.0)
        elif u < 0.32 and scores:
            scores.append(rng.choice(scores))  # a tie with an earlier player
        else:
            scores.append(rng.uniform(-0.01, 0.03))
    return scores


def generated_sequences():
    rng = random.Random(20240721)
    seqs = []
    # Chained windows over a pool, like a validator's evaluation windows.
    for name, players, windows, lo, hi in [
        ("chained-small", 6, 8, 2, 6),
        ("chained-medium", 12, 10, 3, 10),
        ("chained-large", 40, 6, 15, 30),
    ]:
        ws = []
        for _ in range(windows):
            k = rng.randint(lo, hi)
            chosen = rng.sample(range(players), k)
            ws.append({"players": chosen, "scores": random_scores(rng, k)})
        seqs.append({"name": name, "players": players, "windows": ws})
    # Hand-picked edge cases, each a short chain.
    seqs.append({"name": "two-players", "players": 2, "windows": [
        {"players": [0, 1], "scores": [0.02, 0.01]},
        {"players": [1, 0], "scores": [0.03, -0.01]},
        {"players": [0, 1], "scores": [0.5, 0.5]},
    ]})
    seqs.append({"name": "all-tied", "players": 4, "windows": [
        {"players": [0, 1, 2, 3], "scores": [0.01, 0.01, 0.01, 0.01]},
        {"players": [3, 2, 1, 0], "scores": [-99.0, -99.0, -99.0, -99.0]},
    ]})
    seqs.append({"name": "zeros-by-position", "players": 5, "windows": [
        {"players": [0, 1, 2, 3, 4], "scores": [0.0, 0.0, -0.5, 0.0, -1.5]},
        {"players": [4, 3, 2, 1, 0], "scores": [0.01, 0.0, -2.5, 0.0, -99.0]},
    ]})
    seqs.append({"name": "ties-among-others", "players": 6, "windows": [
        {"players": [0, 1, 2, 3, 4, 5], "scores": [0.03, 0.02, 0.02, -99.0, 0.02, -99.0]},
        {"players": [5, 4, 3, 2, 1, 0], "scores": [0.04, 0.04, 0.01, 0.01, -0.02, -0.02]},
        {"players": [0, 2, 4], "scores": [0.01, 0.01, 0.05]},
    ]})
    return seqs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["generate", "rate"])
    args = ap.parse_args()
    installed = version("openskill")
    if installed != EXPECTED_VERSION:
        sys.exit(f"openskill {installed} is installed; the vectors are defined for {EXPECTED_VERSION}")
    if args.mode == "generate":
        sequences = generated_sequences()
    else:
        sequences = json.load(sys.stdin)["sequences"]
    m = model()
    out = {
        "generator": "weights/tests/reference/openskill_vectors.py",
        "openskill": installed,
        "model": {"mu": m.mu, "sigma": m.sigma, "beta": m.beta, "tau": m.tau, "kappa": m.kappa},
        "sequences": run_sequences(sequences),
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
