"""Tests for edge_fetal.biometry.clinical against published equations and tables.

Reference values:
- INTERGROWTH-21st fetal growth standards, z-score tables published by the project
  (GROW_Fetal-zs_{hc,bpd,ofd,ac,fl}_Table, intergrowth21.tghn.org; values in mm at exact weeks,
  rounded to 0.1 mm). These tables are generated from the Papageorghiou et al. 2014 equations,
  so every coefficient must reproduce them to about the table's rounding (0.1 mm).
- Hadlock 1984 / 1985: worked examples, computed by hand from the published equations in cm
  (the arithmetic is written out next to each value).
- Hadlock FP, Harrist RB, Martinez-Poyer J. In utero analysis of fetal growth: a sonographic
  weight standard. Radiology 1991;181:129-133, Table 1 (50th centile weight by week).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_fetal.biometry.clinical import (
    INTERGROWTH_MEASURES,
    GrowthCentile,
    efw_hadlock_g,
    ga_from_ac_weeks,
    ga_from_bpd_weeks,
    ga_from_fl_weeks,
    ga_from_hc_ac_fl_weeks,
    ga_from_hc_weeks,
    ga_out_of_range,
    intergrowth_centile,
    intergrowth_mean_sd_mm,
    normal_centile,
)

# --- INTERGROWTH-21st ---------------------------------------------------------------------------

# (measure, GA weeks) -> values at z = -3, -2, -1, 0, +1, +2, +3 (mm), from the INTERGROWTH-21st
# fetal growth z-score tables GROW_Fetal-zs_<measure>_Table.
IG_ZSCORE_TABLE_MM: dict[tuple[str, int], tuple[float, ...]] = {
    ("hc", 14): (81.1, 86.7, 92.3, 97.9, 103.5, 109.0, 114.6),
    ("hc", 20): (150.2, 157.6, 165.0, 172.5, 179.9, 187.4, 194.8),
    ("hc", 26): (214.6, 223.2, 231.9, 240.5, 249.1, 257.8, 266.4),
    ("hc", 32): (265.5, 275.1, 284.7, 294.4, 304.0, 313.6, 323.2),
    ("hc", 38): (293.0, 304.7, 316.4, 328.1, 339.7, 351.4, 363.1),
    ("hc", 40): (295.2, 308.1, 321.0, 333.9, 346.9, 359.8, 372.7),
    ("bpd", 14): (24.4, 26.1, 27.9, 29.6, 31.4, 33.1, 34.8),
    ("bpd", 20): (41.5, 43.8, 46.1, 48.4, 50.7, 53.0, 55.3),
    ("bpd", 26): (59.2, 62.0, 64.8, 67.6, 70.4, 73.2, 76.0),
    ("bpd", 32): (74.2, 77.4, 80.6, 83.8, 86.9, 90.1, 93.3),
    ("bpd", 38): (82.6, 86.3, 89.9, 93.6, 97.2, 100.9, 104.6),
    ("bpd", 40): (83.1, 87.1, 91.0, 94.9, 98.8, 102.7, 106.7),
    ("ofd", 14): (28.0, 29.9, 31.8, 33.8, 35.7, 37.6, 39.6),
    ("ofd", 20): (52.4, 55.1, 57.9, 60.7, 63.5, 66.2, 69.0),
    ("ofd", 26): (74.5, 78.0, 81.4, 84.9, 88.3, 91.8, 95.2),
    ("ofd", 32): (91.0, 95.2, 99.3, 103.5, 107.6, 111.7, 115.9),
    ("ofd", 38): (97.9, 103.4, 108.8, 114.2, 119.7, 125.1, 130.6),
    ("ofd", 40): (97.2, 103.4, 109.6, 115.8, 122.0, 128.2, 134.4),
    ("ac", 14): (68.2, 72.4, 76.5, 80.6, 84.7, 88.9, 93.0),
    ("ac", 20): (124.8, 132.5, 140.1, 147.7, 155.4, 163.0, 170.6),
    ("ac", 26): (181.3, 191.7, 202.0, 212.4, 222.8, 233.1, 243.5),
    ("ac", 32): (233.2, 246.8, 260.3, 273.9, 287.5, 301.1, 314.7),
    ("ac", 38): (273.3, 292.7, 312.2, 331.6, 351.0, 370.4, 389.9),
    ("ac", 40): (282.6, 305.0, 327.4, 349.8, 372.2, 394.6, 417.1),
    ("fl", 14): (8.6, 10.1, 11.6, 13.1, 14.6, 16.1, 17.7),
    ("fl", 20): (26.0, 27.7, 29.5, 31.3, 33.1, 34.8, 36.6),
    ("fl", 26): (40.7, 42.7, 44.7, 46.7, 48.8, 50.8, 52.8),
    ("fl", 32): (52.3, 54.7, 57.1, 59.5, 61.8, 64.2, 66.6),
    ("fl", 38): (60.6, 63.5, 66.5, 69.4, 72.4, 75.3, 78.3),
    ("fl", 40): (62.5, 65.7, 68.9, 72.1, 75.4, 78.6, 81.8),
}

# Table values are printed to 0.1 mm. The equations land within 0.07 mm of every entry used here
# (the published tables were not generated with exactly this rounding), so allow one unit in the
# last place. A wrong digit in any of the first four significant figures of a coefficient moves
# some entry by well over 0.1 mm.
TABLE_TOL_MM = 0.1


@pytest.mark.parametrize(("key", "row"), list(IG_ZSCORE_TABLE_MM.items()), ids=str)
def test_intergrowth_equations_reproduce_zscore_tables(
    key: tuple[str, int], row: tuple[float, ...]
) -> None:
    measure, ga = key
    mean_mm, sd_mm = intergrowth_mean_sd_mm(measure, float(ga))
    for z, expected_mm in zip(range(-3, 4), row):
        assert mean_mm + z * sd_mm == pytest.approx(expected_mm, abs=TABLE_TOL_MM), (measure, ga, z)


def test_table_covers_every_measure() -> None:
    assert {m for m, _ in IG_ZSCORE_TABLE_MM} == set(INTERGROWTH_MEASURES)
    assert set(INTERGROWTH_MEASURES) == {"hc", "bpd", "ofd", "ac", "fl"}


def test_hc_median_at_20_weeks() -> None:
    # GROW_Fetal-zs_hc_Table, 20 weeks, z = 0: 172.5 mm.
    result = intergrowth_centile("hc", 172.5, 20.0)
    assert result.z == pytest.approx(0.0, abs=0.01)
    assert result.centile == pytest.approx(50.0, abs=0.5)
    assert result.flag is None


def test_table_plus_two_sd_reads_as_z_two() -> None:
    # GROW_Fetal-zs_ac_Table, 32 weeks, z = +2: 301.1 mm.
    result = intergrowth_centile("AC", 301.1, 32.0)
    assert result.measure == "ac"
    assert result.z == pytest.approx(2.0, abs=0.01)
    assert result.centile == pytest.approx(97.72, abs=0.1)


def test_normal_centile_known_quantiles() -> None:
    assert normal_centile(0.0) == 50.0
    assert normal_centile(1.959964) == pytest.approx(97.5, abs=1e-4)
    assert normal_centile(-1.880794) == pytest.approx(3.0, abs=1e-4)
    assert normal_centile(1.281552) == pytest.approx(90.0, abs=1e-4)


@pytest.mark.parametrize("measure", INTERGROWTH_MEASURES)
def test_value_at_mean_is_z0_centile50(measure: str) -> None:
    mean_mm, _ = intergrowth_mean_sd_mm(measure, 27.0)
    result = intergrowth_centile(measure, mean_mm, 27.0)
    assert result.z == pytest.approx(0.0, abs=1e-12)
    assert result.centile == pytest.approx(50.0, abs=1e-9)


@pytest.mark.parametrize("measure", INTERGROWTH_MEASURES)
def test_mean_increases_and_sd_positive_over_valid_range(measure: str) -> None:
    days = range(98, 281)  # 14+0 .. 40+0
    means, sds = zip(*(intergrowth_mean_sd_mm(measure, d / 7.0) for d in days))
    assert all(b > a for a, b in zip(means, means[1:]))
    assert all(sd > 0 for sd in sds)


@settings(max_examples=60, deadline=None)
@given(
    measure=st.sampled_from(INTERGROWTH_MEASURES),
    ga=st.floats(min_value=14.0, max_value=40.0),
    z=st.floats(min_value=-4.0, max_value=4.0),
)
def test_zscore_round_trip(measure: str, ga: float, z: float) -> None:
    mean_mm, sd_mm = intergrowth_mean_sd_mm(measure, ga)
    result = intergrowth_centile(measure, mean_mm + z * sd_mm, ga)
    assert result.flag is None
    assert result.z == pytest.approx(z, abs=1e-9)
    assert result.centile == pytest.approx(normal_centile(z), abs=1e-9)


@pytest.mark.parametrize("ga", [14.0, 40.0])
def test_range_ends_are_inside(ga: float) -> None:
    assert intergrowth_centile("fl", 30.0, ga).z is not None


@pytest.mark.parametrize("ga", [13.99, 40.01, 8.0, 42.0, math.nan, math.inf, -math.inf])
def test_ga_outside_range_is_flagged_not_raised(ga: float) -> None:
    result = intergrowth_centile("hc", 200.0, ga)
    assert isinstance(result, GrowthCentile)
    assert result.z is None and result.centile is None
    assert result.flag
    assert result.value_mm == 200.0


def test_ga_outside_range_flag_says_why() -> None:
    flag = intergrowth_centile("hc", 200.0, 41.0).flag
    assert flag is not None and "outside" in flag and "INTERGROWTH" in flag


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -5.0])
def test_bad_value_is_flagged_not_raised(value: float) -> None:
    result = intergrowth_centile("bpd", value, 25.0)
    assert result.z is None and result.centile is None
    assert result.flag and "bpd" in result.flag


def test_unknown_measure_raises_naming_valid_names() -> None:
    with pytest.raises(ValueError, match="hc, bpd, ofd, ac, fl"):
        intergrowth_centile("crl", 50.0, 20.0)
    with pytest.raises(ValueError, match="valid names"):
        intergrowth_mean_sd_mm("efw", 20.0)


def test_mean_sd_outside_range_raises() -> None:
    with pytest.raises(ValueError, match="outside"):
        intergrowth_mean_sd_mm("hc", 41.0)


def test_growth_centile_is_frozen() -> None:
    result = intergrowth_centile("hc", 172.5, 20.0)
    with pytest.raises(AttributeError):
        result.z = 1.0  # type: ignore[misc]


# --- Hadlock 1984 gestational age ---------------------------------------------------------------

# Worked examples from the published equations, inputs in mm and the arithmetic in cm.
HADLOCK_GA_CASES = [
    # BPD 5.0 cm: 9.54 + 1.482*5.0 + 0.1676*25 = 9.54 + 7.41 + 4.19 = 21.14
    (ga_from_bpd_weeks, 50.0, 21.14),
    # BPD 8.0 cm: 9.54 + 11.856 + 0.1676*64 (10.7264) = 32.1224
    (ga_from_bpd_weeks, 80.0, 32.1224),
    # HC 17.5 cm: 8.96 + 9.45 + 0.0003*5359.375 (1.6078125) = 20.0178125
    (ga_from_hc_weeks, 175.0, 20.0178125),
    # HC 30.0 cm: 8.96 + 16.2 + 0.0003*27000 (8.1) = 33.26
    (ga_from_hc_weeks, 300.0, 33.26),
    # AC 25.0 cm: 8.14 + 18.825 + 0.0036*625 (2.25) = 29.215
    (ga_from_ac_weeks, 250.0, 29.215),
    # AC 15.0 cm: 8.14 + 11.295 + 0.0036*225 (0.81) = 20.245
    (ga_from_ac_weeks, 150.0, 20.245),
    # FL 5.0 cm: 10.35 + 12.3 + 0.170*25 (4.25) = 26.9
    (ga_from_fl_weeks, 50.0, 26.9),
    # FL 3.0 cm: 10.35 + 7.38 + 0.170*9 (1.53) = 19.26
    (ga_from_fl_weeks, 30.0, 19.26),
]


@pytest.mark.parametrize(("fn", "value_mm", "expected_weeks"), HADLOCK_GA_CASES)
def test_hadlock_single_parameter_worked_examples(
    fn, value_mm: float, expected_weeks: float
) -> None:
    assert fn(value_mm) == pytest.approx(expected_weeks, abs=1e-9)


def test_hadlock_combined_hc_ac_fl_worked_example() -> None:
    # HC 28.0, AC 25.0, FL 5.5 cm:
    # 10.33 + 0.031*28*5.5 (4.774) + 0.361*28 (10.108) + 0.0298*25*5.5 (4.0975) = 29.3095
    assert ga_from_hc_ac_fl_weeks(280.0, 250.0, 55.0) == pytest.approx(29.3095, abs=1e-9)


GA_FUNCTIONS = [ga_from_hc_weeks, ga_from_ac_weeks, ga_from_fl_weeks, ga_from_bpd_weeks]


@pytest.mark.parametrize("measure", ["hc", "ac", "fl", "bpd"])
def test_hadlock_ga_monotonic_over_14_to_40_weeks(measure: str) -> None:
    fn = dict(zip(["hc", "ac", "fl", "bpd"], GA_FUNCTIONS))[measure]
    # Sizes from the INTERGROWTH-21st -3 SD at 14 weeks to the +3 SD at 40 weeks.
    mean14, sd14 = intergrowth_mean_sd_mm(measure, 14.0)
    mean40, sd40 = intergrowth_mean_sd_mm(measure, 40.0)
    lo_mm, hi_mm = mean14 - 3 * sd14, mean40 + 3 * sd40
    steps = 400
    gas = [fn(lo_mm + (hi_mm - lo_mm) * i / steps) for i in range(steps + 1)]
    assert all(b > a for a, b in zip(gas, gas[1:]))


@pytest.mark.parametrize("week", [20, 24, 28])
def test_hadlock_ga_agrees_with_intergrowth_medians(week: int) -> None:
    # Different populations, so only agreement within 2 weeks is expected; a unit slip
    # (mm fed to a cm formula) would be off by tens of weeks.
    med = {m: intergrowth_mean_sd_mm(m, float(week))[0] for m in ("hc", "ac", "fl", "bpd")}
    for fn, m in zip(GA_FUNCTIONS, ["hc", "ac", "fl", "bpd"]):
        assert fn(med[m]) == pytest.approx(week, abs=2.0), m
    assert ga_from_hc_ac_fl_weeks(med["hc"], med["ac"], med["fl"]) == pytest.approx(week, abs=2.0)


@pytest.mark.parametrize("fn", GA_FUNCTIONS)
@pytest.mark.parametrize("bad", [0.0, -10.0, math.nan, math.inf, -math.inf])
def test_ga_invalid_input_raises(fn, bad: float) -> None:
    with pytest.raises(ValueError, match="_mm must be a finite length > 0 mm"):
        fn(bad)


@pytest.mark.parametrize("fn", [ga_from_hc_ac_fl_weeks, efw_hadlock_g])
@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_three_parameter_invalid_input_raises_naming_argument(
    fn, position: int, bad: float
) -> None:
    args = [280.0, 250.0, 55.0]
    args[position] = bad
    name = ["hc_mm", "ac_mm", "fl_mm"][position]
    with pytest.raises(ValueError, match=name):
        fn(*args)


def test_ga_out_of_range_helper() -> None:
    assert ga_out_of_range(26.9) is None
    assert ga_out_of_range(14.0) is None and ga_out_of_range(42.0) is None
    # FL 5 mm: 10.35 + 2.460*0.5 + 0.170*0.25 = 11.6225 weeks, below the 14-42 week study range.
    early = ga_from_fl_weeks(5.0)
    assert early == pytest.approx(11.6225, abs=1e-9)
    assert "outside" in (ga_out_of_range(early) or "")
    # FL 90 mm: 10.35 + 22.14 + 13.77 = 46.26 weeks, past term: still returned, but flagged.
    late = ga_from_fl_weeks(90.0)
    assert late == pytest.approx(46.26, abs=1e-9)
    assert ga_out_of_range(late) is not None
    assert ga_out_of_range(math.nan) is not None
    assert ga_out_of_range(39.0, valid_weeks=(14.0, 38.0)) is not None


# --- Hadlock 1985 estimated fetal weight --------------------------------------------------------


def test_efw_worked_example() -> None:
    # HC 28.0, AC 25.0, FL 5.5 cm:
    # log10 EFW = 1.326 - 0.00326*25*5.5 (0.44825) + 0.0107*28 (0.2996) + 0.0438*25 (1.095)
    #             + 0.158*5.5 (0.869) = 3.14135  ->  EFW = 10**3.14135 = 1384.68 g
    assert efw_hadlock_g(280.0, 250.0, 55.0) == pytest.approx(1384.68, abs=0.01)


def test_efw_second_worked_example() -> None:
    # HC 33.0, AC 35.0, FL 7.2 cm:
    # 1.326 - 0.00326*35*7.2 (0.82152) + 0.0107*33 (0.3531) + 0.0438*35 (1.533) + 0.158*7.2 (1.1376)
    # = 3.52818  ->  10**3.52818 = 3374.27 g
    assert efw_hadlock_g(330.0, 350.0, 72.0) == pytest.approx(3374.27, abs=0.01)


# Hadlock 1991 Table 1, 50th centile weight (g) by menstrual week.
HADLOCK_1991_P50_G = {20: 331, 25: 785, 30: 1559, 35: 2595, 40: 3619}


@pytest.mark.parametrize(("week", "p50_g"), list(HADLOCK_1991_P50_G.items()))
def test_efw_of_intergrowth_medians_near_hadlock_1991_median(week: int, p50_g: int) -> None:
    # A fetus at the INTERGROWTH-21st median should weigh near Hadlock's median for the week
    # (different populations: within 15%). Units slipping by 10x would miss by orders of magnitude.
    med = {m: intergrowth_mean_sd_mm(m, float(week))[0] for m in ("hc", "ac", "fl")}
    efw = efw_hadlock_g(med["hc"], med["ac"], med["fl"])
    assert efw == pytest.approx(p50_g, rel=0.15)


def test_efw_increases_with_each_measurement() -> None:
    base = efw_hadlock_g(280.0, 250.0, 55.0)
    assert efw_hadlock_g(290.0, 250.0, 55.0) > base
    assert efw_hadlock_g(280.0, 260.0, 55.0) > base
    assert efw_hadlock_g(280.0, 250.0, 60.0) > base
