"""Tests for collector/experiments.py: assignment (hash vectors, shares, stability) and statistics against independent standard-library computations."""

import math
import random
from functools import reduce
from statistics import NormalDist

import pytest

from collector import experiments as ex

VID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def visitor_ids(n, seed=20000):
    # Ids shaped like the snippet's vid (22 chars of [A-Za-z0-9_-]), reproducible by seed.
    rng = random.Random(seed)
    return ["".join(rng.choice(VID_CHARS) for _ in range(22)) for _ in range(n)]


SEQUENTIAL_IDS = [f"visitor-{i}" for i in range(20000)]  # low-entropy ids: the hard case for a weak hash


# ----------------------------------------------------------------- hash: pinned vectors for the JS port


def fnv1a32_reference(data: bytes) -> int:
    # The textbook shift-and-add form of the FNV prime 0x01000193 = 2^24 + 2^8 + 2^7 + 2^4 + 2^1 + 2^0,
    # written independently of the module's multiply.
    def step(h, byte):
        h ^= byte
        h = h + (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24)
        return h % (1 << 32)

    return reduce(step, data, 0x811C9DC5)


def fmix32_reference(h: int) -> int:
    m = 1 << 32
    h = h ^ (h >> 16)
    h = (h * 2246822507) % m
    h = h ^ (h >> 13)
    h = (h * 3266489909) % m
    return h ^ (h >> 16)


@pytest.mark.parametrize("data", [b"", b"a", b"foobar", b"hero-headline:vid_0001:A", "héllo 🎁".encode()])
def test_fnv1a32_matches_an_independent_implementation(data):
    assert ex.fnv1a32(data) == fnv1a32_reference(data)
    assert ex.fmix32(ex.fnv1a32(data)) == fmix32_reference(fnv1a32_reference(data))


def test_pinned_hash_vectors():
    # Published FNV-1a 32 values, and MurmurHash3 fmix32(1): the JS port must give the same.
    assert ex.fnv1a32(b"") == 0x811C9DC5
    assert ex.fnv1a32(b"a") == 0xE40C292C
    assert ex.fnv1a32(b"foobar") == 0xBF9CF968
    assert ex.fmix32(0) == 0
    assert ex.fmix32(1) == 0x514E28B7
    assert ex.fmix32(0xFFFFFFFF) == 0x81F16F39
    # The per-pair hash: fmix32(fnv1a32(utf8("experiment:unit:variant"))).
    assert ex.fnv1a32(b"hero-headline:vid_0001:A") == 0xE347D824
    assert ex.variant_hash("hero-headline", "vid_0001", "A") == 0x8EDB6EB5
    assert ex.variant_hash("hero-headline", "vid_0001", "B") == 0x83A5E16B
    assert ex.variant_hash("hero-headline", "vid_0001", "C") == 0x9F766590
    assert ex.fnv1a32("héllo".encode()) == 0x4AA48540


def test_pinned_assignments():
    ab = [("A", 50), ("B", 50)]
    abc = [("A", 50), ("B", 50), ("C", 50)]
    split = [("control", 70), ("bold", 30)]
    expected = {
        "vid_0001": ("A", "C", "bold"),
        "k3J9xQ2mZp8wLr5T": ("B", "B", "control"),
        "visitor-42": ("B", "C", "control"),
    }
    for vid, (two, three, seventy) in expected.items():
        assert ex.assign("hero-headline", vid, ab) == two
        assert ex.assign("hero-headline", vid, abc) == three
        assert ex.assign("hero-headline", vid, split) == seventy
    # The score itself, to the last bit, for the port: -w / ln((h + 0.5) / 2**32).
    h = ex.variant_hash("hero-headline", "vid_0001", "A")
    assert ex.variant_score("hero-headline", "vid_0001", "A", 50) == -50 / math.log((h + 0.5) / 2**32)


def test_lone_surrogates_hash_like_textencoder():
    # TextEncoder turns a lone surrogate into U+FFFD and joins a split pair; so must we.
    assert ex.variant_hash("e", "\ud800x", "A") == ex.variant_hash("e", "\ufffdx", "A")
    assert ex.variant_hash("e", "\ud83d\ude00", "A") == ex.variant_hash("e", "\U0001f600", "A")


# ----------------------------------------------------------------- assignment: shares and stability


def share_z(count, n, p):
    return (count - n * p) / math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("ids", [visitor_ids(20000), SEQUENTIAL_IDS], ids=["random-vids", "sequential-ids"])
@pytest.mark.parametrize("weights", [(50, 50), (70, 30), (1, 1, 1), (90, 10)])
def test_shares_follow_the_weights(ids, weights):
    names = ["A", "B", "C"][: len(weights)]
    variants = list(zip(names, weights, strict=False))
    counts = dict.fromkeys(names, 0)
    for vid in ids:
        counts[ex.assign("popup-headline", vid, variants)] += 1
    total = sum(weights)
    for name, w in variants:
        z = share_z(counts[name], len(ids), w / total)
        # A fair split gives |z| < 4 with probability 0.99994; a biased hash misses by tens.
        assert abs(z) < 4, (name, counts, z)


def test_same_id_same_variant():
    variants = [("A", 70), ("B", 30)]
    for vid in visitor_ids(2000, seed=1):
        first = ex.assign("exp", vid, variants)
        assert all(ex.assign("exp", vid, list(variants)) == first for _ in range(3))
    # Different experiments are independent draws: the same visitor is not always in "A".
    ids = visitor_ids(4000, seed=2)
    same = sum(ex.assign("exp-1", v, [("A", 1), ("B", 1)]) == ex.assign("exp-2", v, [("A", 1), ("B", 1)]) for v in ids)
    assert abs(share_z(same, len(ids), 0.5)) < 4


def test_adding_a_third_variant_moves_no_one_between_the_first_two():
    ids = visitor_ids(20000, seed=3)
    before = [ex.assign("exp", v, [("A", 50), ("B", 50)]) for v in ids]
    after = [ex.assign("exp", v, [("A", 50), ("B", 50), ("C", 50)]) for v in ids]
    for b, a in zip(before, after, strict=False):
        assert a == b or a == "C"
    # ...and the newcomer still gets its fair third, taken evenly from A and B.
    assert abs(share_z(after.count("C"), len(ids), 1 / 3)) < 4
    # Removing it again puts everyone back exactly.
    assert [ex.assign("exp", v, [("A", 50), ("B", 50)]) for v in ids] == before


def test_changing_one_weight_moves_no_one_between_the_others():
    ids = visitor_ids(20000, seed=4)
    base = {"A": 1, "B": 1, "C": 1}
    before = [ex.assign("exp", v, list(base.items())) for v in ids]
    for changed in "ABC":
        more = [ex.assign("exp", v, list({**base, changed: 3}.items())) for v in ids]
        less = [ex.assign("exp", v, list({**base, changed: 0.2}.items())) for v in ids]
        for b, up, down in zip(before, more, less, strict=False):
            assert up == b or up == changed  # raising one weight only pulls people into it
            assert down == b or b == changed  # lowering it only pushes its own people out
        assert abs(share_z(more.count(changed), len(ids), 3 / 5)) < 4
    # Two variants: 50/50 -> 70/30 only moves people from B to A.
    two_before = [ex.assign("exp", v, [("A", 50), ("B", 50)]) for v in ids]
    two_after = [ex.assign("exp", v, [("A", 70), ("B", 30)]) for v in ids]
    assert all(a == b or (b, a) == ("B", "A") for b, a in zip(two_before, two_after, strict=False))


def test_weights_are_ratios_and_zero_weight_is_never_assigned():
    ids = visitor_ids(3000, seed=5)
    assert [ex.assign("exp", v, [("A", 70), ("B", 30)]) for v in ids] == [
        ex.assign("exp", v, [("A", 0.7), ("B", 0.3)]) for v in ids
    ]
    assert all(ex.assign("exp", v, [("A", 0), ("B", 1)]) == "B" for v in ids)


@pytest.mark.parametrize(
    "variants",
    [[], [("A", 0)], [("A", -1), ("B", 1)], [("A", float("nan"))], [("A", 1), ("A", 1)], [("A", "1")], [("", 1)]],
)
def test_bad_variants_are_refused(variants):
    with pytest.raises(ValueError):
        ex.assign("exp", "vid_0001", variants)


def test_assign_email_normalises_the_address():
    variants = [("Your cart misses you", 1), ("10% off inside", 1)]
    addresses = [f"shopper{i}@example.com" for i in range(500)]
    for a in addresses:
        v = ex.assign_email("subject-may", a, variants)
        assert ex.assign_email("subject-may", f"  {a.upper()}\n", variants) == v
        assert v == ex.assign("subject-may", a, variants)
    assert {ex.assign_email("subject-may", a, variants) for a in addresses} == {n for n, _ in variants}


# ----------------------------------------------------------------- statistics: independent references

Z95 = NormalDist().inv_cdf(0.975)


def wilson_reference(x, n, z=Z95):
    # The Wilson bounds are the roots of (phat - p)^2 = z^2 p (1 - p) / n, a quadratic in p.
    phat = x / n
    a = 1 + z * z / n
    b = -(2 * phat + z * z / n)
    c = phat * phat
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


def beta_logpdf(x, a, b):
    return math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x)


def p_b_beats_a_by_integration(a, b, points=20000):
    # P(pB > pA) = integral of f_B(x) F_A(x) dx, by the midpoint rule over where the mass is.
    (aa, ba), (ab, bb) = (1 + a[0], 1 + a[1] - a[0]), (1 + b[0], 1 + b[1] - b[0])
    sds = []
    for al, be in ((aa, ba), (ab, bb)):
        m = al / (al + be)
        sds.append((m, math.sqrt(al * be / ((al + be) ** 2 * (al + be + 1)))))
    lo = max(0.0, min(m - 12 * s for m, s in sds))
    hi = min(1.0, max(m + 12 * s for m, s in sds))
    h = (hi - lo) / points
    cdf_a = 0.0
    total = 0.0
    for k in range(points):
        x = lo + (k + 0.5) * h
        fa = math.exp(beta_logpdf(x, aa, ba)) * h
        fb = math.exp(beta_logpdf(x, ab, bb)) * h
        total += fb * (cdf_a + fa / 2)
        cdf_a += fa
    return total


def test_known_case_100_of_1000_vs_130_of_1000():
    r = ex.analyze(
        [{"name": "A", "exposures": 1000, "conversions": 100}, {"name": "B", "exposures": 1000, "conversions": 130}]
    )
    a, b = r["variants"]
    assert a["rate"] == pytest.approx(0.10) and b["rate"] == pytest.approx(0.13)

    # Wilson intervals.
    for v, x in ((a, 100), (b, 130)):
        lo, hi = wilson_reference(x, 1000)
        assert v["ci_low"] == pytest.approx(lo, abs=1e-12) and v["ci_high"] == pytest.approx(hi, abs=1e-12)
    assert a["ci_low"] == pytest.approx(0.0829, abs=1e-4) and a["ci_high"] == pytest.approx(0.1202, abs=1e-4)

    # Difference, with Newcombe's interval built from the reference Wilson bounds.
    (la, ua), (lb, ub) = wilson_reference(100, 1000), wilson_reference(130, 1000)
    assert b["diff"] == pytest.approx(0.03)
    assert b["diff_ci_low"] == pytest.approx(0.03 - math.hypot(0.13 - lb, ua - 0.10), abs=1e-12)
    assert b["diff_ci_high"] == pytest.approx(0.03 + math.hypot(ub - 0.13, 0.10 - la), abs=1e-12)
    assert 0 < b["diff_ci_low"] < 0.03 < b["diff_ci_high"]

    # Pooled z test.
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert b["z"] == pytest.approx(z, rel=1e-12)
    assert b["z"] == pytest.approx(2.1027, abs=1e-4)
    assert b["p_value"] == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-9)

    # Relative lift: +30%, Katz log interval for the ratio.
    se = math.sqrt(1 / 130 - 1 / 1000 + 1 / 100 - 1 / 1000)
    assert b["lift"] == pytest.approx(0.30)
    assert b["lift_ci_low"] == pytest.approx(1.3 * math.exp(-Z95 * se) - 1, rel=1e-9)
    assert b["lift_ci_high"] == pytest.approx(1.3 * math.exp(Z95 * se) - 1, rel=1e-9)
    assert a["lift"] is None and a["diff"] is None and a["is_control"]

    # P(B best): numerical integration, and the normal approximation of the two posteriors.
    p_int = p_b_beats_a_by_integration((100, 1000), (130, 1000))
    assert b["prob_best"] == pytest.approx(p_int, abs=1e-6)

    def mean(x, n):
        return (1 + x) / (2 + n)

    def var(x, n):
        return (1 + x) * (1 + n - x) / ((2 + n) ** 2 * (3 + n))

    p_normal = NormalDist().cdf((mean(130, 1000) - mean(100, 1000)) / math.sqrt(var(130, 1000) + var(100, 1000)))
    assert b["prob_best"] == pytest.approx(p_normal, abs=0.003)
    assert b["prob_best"] == pytest.approx(0.982, abs=0.001)
    assert a["prob_best"] + b["prob_best"] == pytest.approx(1.0)


def test_exact_beta_comparison_closed_forms():
    # Beta(1,1) vs Beta(2,1): integral of 2x * x = 2/3. Beta(1,2) vs Beta(2,1): 5/6.
    assert ex.prob_b_beats_a((0, 0), (1, 1)) == pytest.approx(2 / 3, abs=1e-12)
    assert ex.prob_b_beats_a((0, 1), (1, 1)) == pytest.approx(5 / 6, abs=1e-12)
    assert ex.prob_b_beats_a((7, 40), (7, 40)) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize(
    "a,b",
    [
        ((50, 100), (2, 100)),  # shortest sum over B's successes
        ((2, 100), (50, 100)),  # over A's successes
        ((98, 100), (50, 100)),  # over A's failures
        ((50, 100), (98, 100)),  # over B's failures
        ((0, 40), (0, 10)),
        ((3, 700), (9, 650)),
    ],
)
def test_exact_beta_comparison_matches_integration(a, b):
    p = ex.prob_b_beats_a(a, b)
    assert p == pytest.approx(p_b_beats_a_by_integration(a, b), abs=1e-6)
    assert ex.prob_b_beats_a(b, a) == pytest.approx(1 - p, abs=1e-12)


def test_huge_counts_use_the_normal_limit():
    a, b = (200_000, 1_000_000), (201_000, 1_000_000)
    assert ex.prob_b_beats_a(a, b) == pytest.approx(p_b_beats_a_by_integration(a, b), abs=1e-4)


def binomial_tail_cdf(x, a, b):
    """Beta(a, b)'s CDF for integer a, b: P(Binomial(a + b - 1, x) >= a), an exact finite sum."""
    n = a + b - 1
    return sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1))


def prob_best_reference(counts, points=6000):
    """P(each best) by Simpson's rule on one uniform grid with exact CDFs (independent of the implementation)."""
    params = [(1 + c, 1 + n - c) for c, n in counts]
    h = 1.0 / points
    out = []
    for i, (ai, bi) in enumerate(params):
        total = 0.0
        for t in range(points + 1):
            x = t * h
            w = 1 if t in (0, points) else 4 if t % 2 else 2
            if 0 < x < 1:
                f = math.exp(beta_logpdf(x, ai, bi))
                for j, (aj, bj) in enumerate(params):
                    if j != i:
                        f *= binomial_tail_cdf(x, aj, bj)
                total += w * f
        out.append(total * h / 3)
    return out


@pytest.mark.parametrize(
    "counts",
    [
        [(12, 100), (15, 100), (20, 110)],
        [(3, 40), (3, 40), (3, 40), (9, 60)],
        [(0, 30), (1, 30), (0, 25)],
    ],
)
def test_prob_best_of_three_or_more_is_accurate_to_1e_3(counts):
    got = ex.prob_best(counts)
    ref = prob_best_reference(counts)
    assert sum(got) == pytest.approx(1.0, abs=1e-9)
    for g, r in zip(got, ref, strict=True):
        assert abs(g - r) <= 1e-3, (got, ref)
        assert abs(g - r) <= 1e-4  # in fact far better than the 1e-3 asked for
    assert got == ex.prob_best(counts)  # deterministic


def test_prob_best_by_integration_agrees_with_the_exact_two_variant_sum_and_symmetry():
    for a, b in [((100, 1000), (130, 1000)), ((0, 500), (3, 500)), ((5000, 100000), (5200, 100000))]:
        assert ex.prob_best([a, b], method="integration")[1] == pytest.approx(ex.prob_b_beats_a(a, b), abs=1e-5)
    same = ex.prob_best([(30, 300)] * 5)
    assert all(p == pytest.approx(0.2, abs=1e-9) for p in same)
    big = ex.prob_best([(100_000, 1_000_000), (100_500, 1_000_000), (99_000, 1_000_000)])
    assert sum(big) == pytest.approx(1.0) and big[1] > big[0] > big[2]


def test_monte_carlo_is_kept_for_comparison_and_seeded():
    counts = [(100, 1000), (130, 1000), (120, 1000)]
    mc = ex.prob_best(counts, method="monte_carlo", seed=7)
    assert mc == ex.prob_best(counts, method="monte_carlo", seed=7)
    exact = ex.prob_best(counts)
    assert all(abs(m - e) < 4 * math.sqrt(0.25 / 20000) for m, e in zip(mc, exact, strict=True))
    r = ex.analyze([{"name": n, "exposures": e, "conversions": c} for n, (c, e) in zip("ABC", counts, strict=True)])
    assert [v["prob_best"] for v in r["variants"]] == exact
    assert r["method"]["prob_best"] == "integration"


# ----------------------------------------------------------------- winner rules and progress


def variants(*rows):
    return [{"name": n, "exposures": e, "conversions": c} for n, e, c in rows]


def test_msprt_evidence_is_the_mixture_likelihood_ratio():
    a, b = (100, 1000), (130, 1000)
    pooled = 230 / 2000
    v = pooled * (1 - pooled) * (2 / 1000)
    tau2 = ex.analysis.MSPRT_TAU2
    expected = math.sqrt(v / (v + tau2)) * math.exp(tau2 * 0.03**2 / (2 * v * (v + tau2)))
    assert ex.analysis.msprt_evidence(a, b) == pytest.approx(expected, rel=1e-12)
    assert ex.analysis.msprt_evidence(a, b) == ex.analysis.msprt_evidence(b, a)  # two-sided
    assert ex.analysis.msprt_evidence((0, 0), (3, 10)) == 1.0
    assert ex.analysis.msprt_evidence((0, 100), (0, 100)) == 1.0  # no conversions at all: no evidence


def _aa_peeking(reps, visitors, every, stop, seed):
    """Share of A/A tests (both arms 10 %) in which `stop(counts)` is true at some look every `every` visitors."""
    rng = random.Random(seed)
    stopped = 0
    for _ in range(reps):
        counts = [[0, 0], [0, 0]]
        for v in range(1, visitors + 1):
            arm = counts[rng.random() < 0.5]
            arm[1] += 1
            arm[0] += rng.random() < 0.10
            if v % every == 0 and stop([tuple(counts[0]), tuple(counts[1])]):
                stopped += 1
                break
    return stopped / reps


def test_aa_tests_peeked_at_every_50_visitors_name_a_false_winner_at_most_5_percent_of_the_time():
    def sequential(counts):  # the rule analyze names winners by (min_sample 0: the strictest case)
        return ex.analysis.sequential_decision(counts, 0.05)["winner"] is not None

    def fixed_bayes(counts):  # the rule before: >= 500 exposures per variant and P(best) >= 95 %
        if min(n for _, n in counts) < 500:
            return False
        return max(ex.prob_best(counts)) >= 0.95

    new_rate = _aa_peeking(reps=1000, visitors=5000, every=50, stop=sequential, seed=11)
    old_rate = _aa_peeking(reps=300, visitors=3000, every=50, stop=fixed_bayes, seed=11)
    assert new_rate <= 0.05, new_rate
    assert old_rate > 0.05 * 3, old_rate  # the old rule, watched this often, names false winners far more often


def test_analyze_names_the_winner_by_the_sequential_test():
    counts = [(100, 1000), (130, 1000)]
    r = ex.analyze(variants(("A", 1000, 100), ("B", 1000, 130)))
    # P(B best) is 98 %, which the old fixed rule took for a winner; the sequential evidence is not there yet.
    assert r["variants"][1]["prob_best"] == pytest.approx(0.982, abs=0.001)
    assert r["winner"] is None and not r["progress"]["can_stop"]
    ev = ex.analysis.msprt_evidence(*counts)
    assert r["variants"][1]["evidence"] == ev and r["variants"][1]["always_valid_p"] == pytest.approx(1 / ev)
    assert r["progress"]["evidence_needed"] == pytest.approx(20.0)
    assert r["progress"]["message"].startswith(f"Keep it running: evidence {ev:.1f} of the 20.0 needed")
    assert "Looking as often as you like is safe" in r["progress"]["message"]


def test_no_winner_on_small_samples_even_with_strong_evidence():
    r = ex.analyze(variants(("A", 300, 10), ("B", 300, 60)))
    assert r["progress"]["evidence_reached"] and r["winner"] is None
    p = r["progress"]
    assert p["exposures_needed"] == {"A": 200, "B": 200} and not p["sample_reached"]
    assert p["message"].startswith("Needs 200 more exposures on A and 200 more on B; evidence ")


def test_progress_sentence_names_what_is_missing():
    r = ex.analyze(variants(("A", 1000, 100), ("B", 120, 14)))
    assert r["winner"] is None
    assert r["progress"]["exposures_needed"] == {"A": 0, "B": 380}
    assert r["progress"]["message"].startswith("Needs 380 more exposures on B; evidence ")


def test_clear_winner_with_big_samples():
    r = ex.analyze(variants(("A", 5000, 500), ("B", 5000, 650)))
    assert r["winner"] == "B" and r["progress"]["can_stop"]
    assert r["variants"][1]["prob_best"] > 0.9999
    assert r["variants"][1]["lift_ci_low"] > 0
    assert r["progress"]["message"].startswith(
        'B wins: the sequential test rules out "no difference" with at most 5% error'
    )
    assert r["progress"]["message"].endswith("The test can stop.")


def test_the_control_can_win_and_thresholds_are_configurable():
    r = ex.analyze(variants(("A", 5000, 650), ("B", 5000, 500)))
    assert r["winner"] == "A"
    assert ex.analyze(variants(("A", 5000, 650), ("B", 5000, 500)), min_sample=6000)["winner"] is None
    # A stricter error (min_probability 0.999: alpha 0.1 %) needs more evidence.
    mid = variants(("A", 3000, 300), ("B", 3000, 375))
    ev = ex.analysis.msprt_evidence((300, 3000), (375, 3000))
    assert 20 < ev < 1000
    assert ex.analyze(mid)["winner"] == "B"
    assert ex.analyze(mid, min_probability=0.999)["winner"] is None
    # Three variants: each against the control at alpha / 2.
    three = ex.analyze(variants(("A", 5000, 500), ("B", 5000, 650), ("C", 5000, 700)))
    assert three["winner"] == "C" and three["progress"]["evidence_needed"] == pytest.approx(40.0)


def test_empty_and_zero_rates_do_not_break():
    r = ex.analyze(variants(("A", 0, 0), ("B", 0, 0), ("C", 10, 0)))
    a, b, c = r["variants"]
    assert a["rate"] is None and a["ci_low"] is None and b["lift"] is None
    assert c["rate"] == 0 and c["ci_low"] == 0 and 0 < c["ci_high"] < 0.35
    assert r["winner"] is None
    assert sum(v["prob_best"] for v in r["variants"]) == pytest.approx(1.0)
    r = ex.analyze(variants(("A", 600, 0), ("B", 600, 6)))
    assert r["variants"][1]["lift"] is None  # no lift over a 0% control
    assert r["variants"][1]["lift_ci_low"] is None
    assert r["variants"][1]["diff_ci_low"] < 0.01 < r["variants"][1]["diff_ci_high"]
    single = ex.analyze(variants(("A", 900, 90)))
    assert single["winner"] is None and single["progress"]["message"] == "Add a second variant to compare"


@pytest.mark.parametrize("rows", [[], [("A", 10, 11)], [("A", -1, 0)], [("A", 10, 1), ("A", 10, 2)], [("A", 1.5, 1)]])
def test_bad_counts_are_refused(rows):
    with pytest.raises(ValueError):
        ex.analyze(variants(*rows))
