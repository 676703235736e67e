"""Clinical maths on fused biometry: gestational age, fetal weight, growth centiles.

Pure functions, no I/O. Millimetres in, weeks / grams / z-scores out. The published
Hadlock formulas are in centimetres; every one converts explicitly with ``_cm()``.

Sources:
- Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted analysis
  of multiple fetal growth parameters. Radiology 1984;152:497-501. ("Hadlock 1984")
- Hadlock FP, Harrist RB, Sharman RS, Deter RL, Park SK. Estimation of fetal weight with the
  use of head, body, and femur measurements - a prospective study. Am J Obstet Gynecol
  1985;151:333-337. ("Hadlock 1985")
- Papageorghiou AT, Ohuma EO, Altman DG, et al. International standards for fetal growth based
  on serial ultrasound measurements: the Fetal Growth Longitudinal Study of the
  INTERGROWTH-21st Project. Lancet 2014;384:869-79. ("INTERGROWTH-21st")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

# Hadlock 1984 abstract: "a cross-sectional study of 361 fetuses between 14 and 42 menstrual
# weeks". An age outside this span is an extrapolation of the regression.
HADLOCK_1984_GA_RANGE_WEEKS: tuple[float, float] = (14.0, 42.0)

# INTERGROWTH-21st fetal growth standards cover 14+0 to 40+0 exact weeks (98-280 days).
INTERGROWTH_GA_RANGE_WEEKS: tuple[float, float] = (14.0, 40.0)


def _cm(name: str, value_mm: float) -> float:
    """Validate a length in mm (finite, > 0) and return it in cm, the formulas' unit."""
    if not math.isfinite(value_mm) or value_mm <= 0:
        raise ValueError(f"{name} must be a finite length > 0 mm, got {value_mm!r}")
    return value_mm / 10.0


# --- Hadlock 1984: gestational (menstrual) age in weeks, measurements in cm -------------------


def ga_from_bpd_weeks(bpd_mm: float) -> float:
    """Gestational age (weeks) from biparietal diameter, Hadlock 1984."""
    bpd = _cm("bpd_mm", bpd_mm)
    # Hadlock 1984, regression equations (BPD in cm): MA = 9.54 + 1.482*BPD + 0.1676*BPD^2
    return 9.54 + 1.482 * bpd + 0.1676 * bpd**2


def ga_from_hc_weeks(hc_mm: float) -> float:
    """Gestational age (weeks) from head circumference, Hadlock 1984."""
    hc = _cm("hc_mm", hc_mm)
    # Hadlock 1984, regression equations (HC in cm): MA = 8.96 + 0.540*HC + 0.0003*HC^3
    return 8.96 + 0.540 * hc + 0.0003 * hc**3


def ga_from_ac_weeks(ac_mm: float) -> float:
    """Gestational age (weeks) from abdominal circumference, Hadlock 1984."""
    ac = _cm("ac_mm", ac_mm)
    # Hadlock 1984, regression equations (AC in cm): MA = 8.14 + 0.753*AC + 0.0036*AC^2
    return 8.14 + 0.753 * ac + 0.0036 * ac**2


def ga_from_fl_weeks(fl_mm: float) -> float:
    """Gestational age (weeks) from femur length, Hadlock 1984."""
    fl = _cm("fl_mm", fl_mm)
    # Hadlock 1984, regression equations (FL in cm): MA = 10.35 + 2.460*FL + 0.170*FL^2
    return 10.35 + 2.460 * fl + 0.170 * fl**2


def ga_from_hc_ac_fl_weeks(hc_mm: float, ac_mm: float, fl_mm: float) -> float:
    """Gestational age (weeks) from HC, AC and FL together, Hadlock 1984.

    Combining parameters narrows the error in the third trimester (Hadlock 1984, abstract).
    """
    hc, ac, fl = _cm("hc_mm", hc_mm), _cm("ac_mm", ac_mm), _cm("fl_mm", fl_mm)
    # Hadlock 1984, regression equations for combined parameters (cm):
    # MA = 10.33 + 0.031*HC*FL + 0.361*HC + 0.0298*AC*FL
    return 10.33 + 0.031 * hc * fl + 0.361 * hc + 0.0298 * ac * fl


def ga_out_of_range(
    ga_weeks: float, valid_weeks: tuple[float, float] = HADLOCK_1984_GA_RANGE_WEEKS
) -> str | None:
    """Why a computed GA should not be trusted, or None when it lies in the formula's range.

    The GA functions return extrapolated numbers unchanged; callers show them with this flag.
    """
    lo, hi = valid_weeks
    if not math.isfinite(ga_weeks):
        return f"GA is not a finite number ({ga_weeks!r})"
    if ga_weeks < lo or ga_weeks > hi:
        return (
            f"GA {ga_weeks:.1f} weeks is outside {lo:g}-{hi:g} weeks, "
            "the range the formula was derived on"
        )
    return None


# --- Hadlock 1985: estimated fetal weight ------------------------------------------------------


def efw_hadlock_g(hc_mm: float, ac_mm: float, fl_mm: float) -> float:
    """Estimated fetal weight (g) from HC, AC and FL, Hadlock 1985."""
    hc, ac, fl = _cm("hc_mm", hc_mm), _cm("ac_mm", ac_mm), _cm("fl_mm", fl_mm)
    # Hadlock 1985, HC/AC/FL model (cm, grams):
    # log10(EFW) = 1.326 - 0.00326*AC*FL + 0.0107*HC + 0.0438*AC + 0.158*FL
    log10_efw = 1.326 - 0.00326 * ac * fl + 0.0107 * hc + 0.0438 * ac + 0.158 * fl
    return 10.0**log10_efw


# --- INTERGROWTH-21st fetal growth standards ---------------------------------------------------
# Mean and SD in mm as functions of GA in exact weeks. Coefficients are the fitted equations
# published in Papageorghiou et al. 2014 (Lancet 384:869-79); they reproduce the
# INTERGROWTH-21st z-score tables (GROW_Fetal-zs_<measure>_Table) to the table's 0.1 mm.
# log is the natural logarithm.

_Curve = Callable[[float], float]

_IG_MEAN_MM: dict[str, _Curve] = {
    # HC: -28.2849 + 1.69267*GA^2 - 0.397485*GA^2*ln(GA)
    "hc": lambda ga: -28.2849 + 1.69267 * ga**2 - 0.397485 * ga**2 * math.log(ga),
    # BPD (outer-inner): 5.60878 + 0.158369*GA^2 - 0.00256379*GA^3
    "bpd": lambda ga: 5.60878 + 0.158369 * ga**2 - 0.00256379 * ga**3,
    # OFD: -12.4097 + 0.626342*GA^2 - 0.148075*GA^2*ln(GA)
    "ofd": lambda ga: -12.4097 + 0.626342 * ga**2 - 0.148075 * ga**2 * math.log(ga),
    # AC: -81.3243 + 11.6772*GA - 0.000561865*GA^3
    "ac": lambda ga: -81.3243 + 11.6772 * ga - 0.000561865 * ga**3,
    # FL: -39.9616 + 4.32298*GA - 0.0380156*GA^2
    "fl": lambda ga: -39.9616 + 4.32298 * ga - 0.0380156 * ga**2,
}

_IG_SD_MM: dict[str, _Curve] = {
    # HC: 1.98735 + 0.0136772*GA^3 - 0.00726264*GA^3*ln(GA) + 0.000976253*GA^3*ln(GA)^2
    "hc": lambda ga: (
        1.98735
        + 0.0136772 * ga**3
        - 0.00726264 * ga**3 * math.log(ga)
        + 0.000976253 * ga**3 * math.log(ga) ** 2
    ),
    # BPD: exp(0.101242 + 0.00150557*GA^3 - 0.000771535*GA^3*ln(GA)
    #          + 0.0000999638*GA^3*ln(GA)^2)
    "bpd": lambda ga: math.exp(
        0.101242
        + 0.00150557 * ga**3
        - 0.000771535 * ga**3 * math.log(ga)
        + 0.0000999638 * ga**3 * math.log(ga) ** 2
    ),
    # OFD: exp(-0.880034 + 0.0631165*GA^2 - 0.0317136*GA^2*ln(GA) + 0.00408302*GA^2*ln(GA)^2)
    "ofd": lambda ga: math.exp(
        -0.880034
        + 0.0631165 * ga**2
        - 0.0317136 * ga**2 * math.log(ga)
        + 0.00408302 * ga**2 * math.log(ga) ** 2
    ),
    # AC: -4.36302 + 0.121445*GA^2 - 0.0130256*GA^3 + 0.00282143*GA^3*ln(GA)
    "ac": lambda ga: (
        -4.36302 + 0.121445 * ga**2 - 0.0130256 * ga**3 + 0.00282143 * ga**3 * math.log(ga)
    ),
    # FL: exp(0.605843 - 42.0014*GA^-2 + 0.00000917972*GA^3)
    "fl": lambda ga: math.exp(0.605843 - 42.0014 * ga**-2 + 0.00000917972 * ga**3),
}

INTERGROWTH_MEASURES: tuple[str, ...] = tuple(_IG_MEAN_MM)


@dataclass(frozen=True)
class GrowthCentile:
    """One measurement placed on the INTERGROWTH-21st standard.

    ``z`` and ``centile`` (0-100) are None when the standard does not apply; ``flag`` says why.
    """

    measure: str
    value_mm: float
    ga_weeks: float
    z: float | None
    centile: float | None
    flag: str | None


def _measure_name(measure: str) -> str:
    name = measure.strip().lower()
    if name not in _IG_MEAN_MM:
        raise ValueError(
            f"unknown measure {measure!r}; valid names: {', '.join(INTERGROWTH_MEASURES)}"
        )
    return name


def _ga_flag(ga_weeks: float) -> str | None:
    lo, hi = INTERGROWTH_GA_RANGE_WEEKS
    if not math.isfinite(ga_weeks):
        return f"GA is not a finite number ({ga_weeks!r})"
    if ga_weeks < lo or ga_weeks > hi:
        return f"GA {ga_weeks:.2f} weeks is outside the INTERGROWTH-21st range {lo:g}+0 to {hi:g}+0"
    return None


def intergrowth_mean_sd_mm(measure: str, ga_weeks: float) -> tuple[float, float]:
    """Mean and SD (mm) of ``measure`` at ``ga_weeks`` (exact weeks), INTERGROWTH-21st.

    Raises ValueError for an unknown measure or a GA outside 14-40 weeks.
    """
    name = _measure_name(measure)
    flag = _ga_flag(ga_weeks)
    if flag is not None:
        raise ValueError(flag)
    return _IG_MEAN_MM[name](ga_weeks), _IG_SD_MM[name](ga_weeks)


def normal_centile(z: float) -> float:
    """Centile (0-100) of a standard-normal z-score."""
    return 50.0 * (1.0 + math.erf(z / math.sqrt(2.0)))


def intergrowth_centile(measure: str, value_mm: float, ga_weeks: float) -> GrowthCentile:
    """z-score and centile of a measurement at a GA, INTERGROWTH-21st fetal growth standard.

    Outside 14+0 to 40+0 weeks, or with a non-finite or non-positive input, returns z=None,
    centile=None and a flag instead of a number. An unknown measure name raises ValueError.
    """
    name = _measure_name(measure)
    flag = _ga_flag(ga_weeks)
    if flag is None and not (math.isfinite(value_mm) and value_mm > 0):
        flag = f"{name} must be a finite length > 0 mm, got {value_mm!r}"
    if flag is not None:
        return GrowthCentile(name, value_mm, ga_weeks, None, None, flag)
    mean_mm, sd_mm = _IG_MEAN_MM[name](ga_weeks), _IG_SD_MM[name](ga_weeks)
    z = (value_mm - mean_mm) / sd_mm
    return GrowthCentile(name, value_mm, ga_weeks, z, normal_centile(z), None)
