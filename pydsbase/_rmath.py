"""R 4.2.2's normal and chi-square tail probabilities, as metafor 3.8-1 uses them (no R needed).

Everything here is a port of R's own C code (``src/nmath`` of R 4.2.2) that keeps R's order of
floating-point operations, so the results are R's doubles bit for bit: the elementary functions
(``exp``, ``log``, ``log1p``, ``expm1``, ``sqrt``, ``pow``) come from the same C library through
:mod:`math`, every other step is IEEE double arithmetic done in the same order, and none of the
code paths used here has a ``long double`` in R (its only one nearby, ``logspace_sum``, is not
called by ``pgamma``). On x86-64 R is compiled without fused multiply-add, as Python is.

- :func:`pnorm_upper` is R's ``pnorm(x, lower.tail = FALSE)`` (``pnorm_both``, Cody's algorithm,
  ``pnorm.c``), elementwise over a numpy array.
- :func:`pchisq_upper` is R's ``pchisq(q, df, lower.tail = FALSE)``, i.e.
  ``pgamma(q / 2, df / 2, lower.tail = FALSE)`` computed with Morten Welinder's algorithm of
  ``pgamma.c`` (series for small x, continued fractions, Poisson densities through ``ebd0`` and
  ``stirlerr``, an asymptotic expansion (``ppois_asymp``) for large df with q near df, redone on
  the log scale when the result is near underflow), with R's own ``lgammafn``/``gammafn``/
  ``lgammacor``/``chebyshev_eval`` (not the C library's ``lgamma``). Checked bit for bit against
  Rscript by ``tests/test_rmath_pchisq_vs_r.py``. The general ``_pchisq``/``_pgamma`` (lower tail,
  log scale) are the same ports; only the upper tail is public.
- ``QNORM_0975_UPPER`` is R's ``qnorm(0.025, lower.tail = FALSE)``, the critical value metafor
  uses for 95% intervals. It is one ulp above ``qnorm(0.975)``.

The C library's ``floor`` and friends return doubles and never raise; Python's :mod:`math`
raises on overflow and on ``log(0)``, so small helpers below give the C results instead.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

QNORM_0975_UPPER: Final = float.fromhex("0x1.f5c0331eeff83p+0")

_INF: Final = math.inf
_DBL_EPSILON: Final = 2.220446049250313e-16
_DBL_MIN: Final = 2.2250738585072014e-308
_DBL_MAX: Final = 1.7976931348623157e308

# Constants of Rmath.h (decimal literals; Python and the C compiler round them to the same double).
_M_LN2: Final = 0.693147180559945309417232121458
_M_2PI: Final = 6.283185307179586476925286766559
_M_SQRT_32: Final = 5.656854249492380195206754896838
_M_1_SQRT_2PI: Final = 0.398942280401432677939946059934
_M_LN_SQRT_2PI: Final = 0.918938533204672741780329736406
_M_SQRT_2PI: Final = 2.50662827463100050241576528481104525301  # dpois.c's own definition
_EPS_HALF: Final = _DBL_EPSILON * 0.5


# --- C semantics for the elementary functions -------------------------------------------------

def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return _INF


def _expm1(x: float) -> float:
    try:
        return math.expm1(x)
    except OverflowError:
        return _INF


def _log(x: float) -> float:
    if x > 0.0 or math.isnan(x):
        return math.log(x)
    return -_INF if x == 0.0 else math.nan


def _log1p(x: float) -> float:
    if x > -1.0 or math.isnan(x):
        return math.log1p(x)
    return -_INF if x == -1.0 else math.nan


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0.0 or math.isnan(x) else math.nan


def _floor(x: float) -> float:
    """C ``floor``: a double, infinities and NaN unchanged (callers never pass -0.0)."""
    return float(math.floor(x)) if math.isfinite(x) else x


def _ldexp(x: float, e: int) -> float:
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return math.copysign(_INF, x)


def _fmax2(x: float, y: float) -> float:
    if math.isnan(x) or math.isnan(y):
        return x + y
    return y if x < y else x


def _log1_exp(x: float) -> float:
    """``R_Log1_Exp(x)`` = log(1 - exp(x)) for x <= 0."""
    return _log(-_expm1(x)) if x > -_M_LN2 else _log1p(-_exp(x))


# --- pnorm.c, dnorm.c ----------------------------------------------------------------------------

_A: Final = (2.2352520354606839287, 161.02823106855587881, 1067.6894854603709582, 18154.981253343561249,
             0.065682337918207449113)
_B: Final = (47.20258190468824187, 976.09855173777669322, 10260.932208618978205, 45507.789335026729956)
_C: Final = (0.39894151208813466764, 8.8831497943883759412, 93.506656132177855979, 597.27027639480026226,
             2494.5375852903726711, 6848.1904505362823326, 11602.651437647350124, 9842.7148383839780218,
             1.0765576773720192317e-8)
_D: Final = (22.266688044328115691, 235.38790178262499861, 1519.377599407554805, 6485.558298266760755,
             18615.571640885098091, 34900.952721145977266, 38912.003286093271411, 19685.429676859990727)
_P: Final = (0.21589853405795699, 0.1274011611602473639, 0.022235277870649807, 0.001421619193227893466,
             2.9112874951168792e-5, 0.02307344176494017303)
_Q: Final = (1.28426009614491121, 0.468238212480865118, 0.0659881378689285515, 0.00378239633202758244,
             7.29751555083966205e-5)


def _pnorm(x: float, lower_tail: bool, log_p: bool) -> float:
    """R's ``pnorm(x, 0, 1, lower_tail, log_p)``: ``pnorm5`` and one tail of ``pnorm_both``."""
    if math.isnan(x):
        return x
    y = abs(x)
    if y <= 0.67448975:
        if y > _EPS_HALF:
            xsq = x * x
            xnum = _A[4] * xsq
            xden = xsq
            for i in range(3):
                xnum = (xnum + _A[i]) * xsq
                xden = (xden + _B[i]) * xsq
        else:
            xnum = xden = 0.0
        temp = x * (xnum + _A[3]) / (xden + _B[3])
        p = 0.5 + temp if lower_tail else 0.5 - temp
        return _log(p) if log_p else p
    if y <= _M_SQRT_32:
        xnum = _C[8] * y
        xden = y
        for i in range(7):
            xnum = (xnum + _C[i]) * y
            xden = (xden + _D[i]) * y
        temp = (xnum + _C[7]) / (xden + _D[7])
        return _pnorm_del(x, y, temp, lower_tail, log_p)
    if (log_p and y < 1e170) or (-37.5193 < x < 8.2924 if lower_tail else -8.2924 < x < 37.5193):
        xsq = 1.0 / (x * x)
        xnum = _P[5] * xsq
        xden = xsq
        for i in range(4):
            xnum = (xnum + _P[i]) * xsq
            xden = (xden + _Q[i]) * xsq
        temp = xsq * (xnum + _P[4]) / (xden + _Q[4])
        temp = (_M_1_SQRT_2PI - temp) / y
        return _pnorm_del(x, x, temp, lower_tail, log_p)
    # |x| so large that the probabilities are 0 and 1 (also x = +-Inf).
    small = -_INF if log_p else 0.0
    one = 0.0 if log_p else 1.0
    return (one if x > 0 else small) if lower_tail else (small if x > 0 else one)


def _pnorm_del(x: float, arg: float, temp: float, lower_tail: bool, log_p: bool) -> float:
    """The ``do_del(arg)`` and ``swap_tail`` steps of R's pnorm_both for the requested tail.

    ``do_del`` computes the tail beyond |x| directly ("cum"), and its complement from it; the
    tail beyond |x| is the upper one for x > 0.
    """
    xsq = math.trunc(arg * 16) / 16
    delta = (arg - xsq) * (arg + xsq)
    direct = lower_tail != (x > 0.0)  # True: the asked tail is the small one computed directly
    if log_p:
        if direct:
            return (-xsq * (xsq * 0.5)) - delta * 0.5 + _log(temp)
        return _log1p(-_exp(-xsq * (xsq * 0.5)) * _exp(-(delta * 0.5)) * temp)
    cum = _exp(-xsq * (xsq * 0.5)) * _exp(-(delta * 0.5)) * temp
    return cum if direct else 1.0 - cum


def _pnorm_upper_scalar(x: float) -> float:
    """R's ``pnorm(x, lower.tail = FALSE)`` for one double."""
    return _pnorm(x, False, False)


def pnorm_upper(x: FloatArray) -> FloatArray:
    """R's ``pnorm(x, lower.tail = FALSE)`` elementwise (mean 0, sd 1)."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    out = np.fromiter((_pnorm(float(v), False, False) for v in flat), dtype=np.float64, count=flat.size)
    return out.reshape(np.shape(x))


_DNORM_UNDERFLOW: Final = math.sqrt(-2 * _M_LN2 * (-1021 + 1 - 53))  # DBL_MIN_EXP + 1 - DBL_MANT_DIG


def _dnorm(x: float) -> float:
    """R's ``dnorm(x, 0, 1, FALSE)`` (dnorm4 without MATHLIB_FAST_dnorm)."""
    if math.isnan(x):
        return x
    if not math.isfinite(x):
        return 0.0
    x = abs(x)
    if x >= 2 * math.sqrt(_DBL_MAX):
        return 0.0
    if x < 5:
        return _M_1_SQRT_2PI * _exp(-0.5 * x * x)
    if x > _DNORM_UNDERFLOW:
        return 0.0
    x1 = math.ldexp(float(round(math.ldexp(x, 16))), -16)  # round(): nearbyint, ties to even
    x2 = x - x1
    return _M_1_SQRT_2PI * (_exp(-0.5 * x1 * x1) * _exp((-0.5 * x2 - x1) * x2))


# --- chebyshev.c, gamma.c, lgammacor.c, lgamma.c, stirlerr.c -----------------------------------

_GAMCS: Final = (  # the first ngam = 22 of gamma.c's 42 coefficients
    +.8571195590989331421920062399942e-2, +.4415381324841006757191315771652e-2,
    +.5685043681599363378632664588789e-1, -.4219835396418560501012500186624e-2,
    +.1326808181212460220584006796352e-2, -.1893024529798880432523947023886e-3,
    +.3606925327441245256578082217225e-4, -.6056761904460864218485548290365e-5,
    +.1055829546302283344731823509093e-5, -.1811967365542384048291855891166e-6,
    +.3117724964715322277790254593169e-7, -.5354219639019687140874081024347e-8,
    +.9193275519859588946887786825940e-9, -.1577941280288339761767423273953e-9,
    +.2707980622934954543266540433089e-10, -.4646818653825730144081661058933e-11,
    +.7973350192007419656460767175359e-12, -.1368078209830916025799499172309e-12,
    +.2347319486563800657233471771688e-13, -.4027432614949066932766570534699e-14,
    +.6910051747372100912138336975257e-15, -.1185584500221992907052387126192e-15,
)
_ALGMCS: Final = (  # the first nalgm = 5 of lgammacor.c's 15 coefficients
    +.1666389480451863247205729650822e+0, -.1384948176067563840732986059135e-4,
    +.9810825646924729426157171547487e-8, -.1809129475572494194263306266719e-10,
    +.6221098041892605227126015543416e-13,
)
_GAMMA_XMAX: Final = 171.61447887182298
_LGAMMA_XMAX: Final = 2.5327372760800758e+305
_LGAMMACOR_XBIG: Final = 94906265.62425156
_LGAMMACOR_XMAX: Final = 3.745194030963158e306


def _chebyshev_eval(x: float, a: tuple[float, ...]) -> float:
    if x < -1.1 or x > 1.1:
        return math.nan
    twox = x * 2
    b2 = b1 = b0 = 0.0
    for coef in reversed(a):
        b2 = b1
        b1 = b0
        b0 = twox * b1 - b2 + coef
    return (b0 - b2) * 0.5


def _gammafn(x: float) -> float:
    """R's ``gammafn`` for x > 0 (the only arguments pgamma gives it)."""
    if math.isnan(x):
        return x
    if x <= 0.0:
        raise ValueError("only x > 0 is ported")
    if x <= 10:
        n = int(x)
        y = x - n  # in [0, 1)
        n -= 1
        value = _chebyshev_eval(y * 2 - 1, _GAMCS) + .9375
        if n == 0:
            return value
        if n < 0:  # 0 < x < 1; R's "y < xsml" overflow branch needs x < 2.2e-308, never reached from lgammafn
            if y < 2.2474362225598545e-308:
                return _INF
            return value / x
        for i in range(1, n + 1):
            value *= y + i
        return value
    if x > _GAMMA_XMAX:
        return _INF
    if x <= 50 and x == int(x):
        value = 1.0
        for i in range(2, int(x)):
            value *= i
        return value
    # R's test "(2*y == (int)2*y)" is always true: (int)2*y is 2*y, so stirlerr() is always used.
    return _exp((x - 0.5) * math.log(x) - x + _M_LN_SQRT_2PI + _stirlerr(x))


def _lgammacor(x: float) -> float:
    if x < 10:
        return math.nan
    if x < _LGAMMACOR_XBIG:
        tmp = 10 / x
        return _chebyshev_eval(tmp * tmp * 2 - 1, _ALGMCS) / x
    return 1 / (x * 12)  # also for x >= xmax, where R warns of underflow


def _lgammafn(x: float) -> float:
    """R's ``lgammafn`` for x > 0 (the only arguments pgamma gives it)."""
    if math.isnan(x):
        return x
    if x <= 0.0:
        raise ValueError("only x > 0 is ported")
    if x < 1e-306:
        return -math.log(x)
    if x <= 10:
        return math.log(abs(_gammafn(x)))
    if x > _LGAMMA_XMAX:
        return _INF
    if x > 1e17:
        return x * (math.log(x) - 1.)
    if x > 4934720.:
        return _M_LN_SQRT_2PI + (x - 0.5) * math.log(x) - x
    return _M_LN_SQRT_2PI + (x - 0.5) * math.log(x) - x + _lgammacor(x)


_SFERR_HALVES: Final = (  # stirlerr(n) for n = 0, 0.5, 1, ..., 15 (n = 0 is a place holder)
    0.0, 0.1534264097200273452913848, 0.0810614667953272582196702, 0.0548141210519176538961390,
    0.0413406959554092940938221, 0.03316287351993628748511048, 0.02767792568499833914878929,
    0.02374616365629749597132920, 0.02079067210376509311152277, 0.01848845053267318523077934,
    0.01664469118982119216319487, 0.01513497322191737887351255, 0.01387612882307074799874573,
    0.01281046524292022692424986, 0.01189670994589177009505572, 0.01110455975820691732662991,
    0.010411265261972096497478567, 0.009799416126158803298389475, 0.009255462182712732917728637,
    0.008768700134139385462952823, 0.008330563433362871256469318, 0.007934114564314020547248100,
    0.007573675487951840794972024, 0.007244554301320383179543912, 0.006942840107209529865664152,
    0.006665247032707682442354394, 0.006408994188004207068439631, 0.006171712263039457647532867,
    0.005951370112758847735624416, 0.005746216513010115682023589, 0.005554733551962801371038690,
)
_S0: Final = 0.083333333333333333333  # 1/12
_S1: Final = 0.00277777777777777777778  # 1/360
_S2: Final = 0.00079365079365079365079365  # 1/1260
_S3: Final = 0.000595238095238095238095238  # 1/1680
_S4: Final = 0.0008417508417508417508417508  # 1/1188


def _stirlerr(n: float) -> float:
    """R 4.2's ``stirlerr(n)`` = log(n!) - log(sqrt(2 pi n) (n/e)^n), n >= 0 (R 4.4 changed it)."""
    if n <= 15.0:
        nn = n + n
        if nn == int(nn):
            return _SFERR_HALVES[int(nn)]
        return _lgammafn(n + 1.) - (n + 0.5) * _log(n) + n - _M_LN_SQRT_2PI
    nn = n * n
    if n > 500:
        return (_S0 - _S1 / nn) / n
    if n > 80:
        return (_S0 - (_S1 - _S2 / nn) / nn) / n
    if n > 35:
        return (_S0 - (_S1 - (_S2 - _S3 / nn) / nn) / nn) / n
    return (_S0 - (_S1 - (_S2 - (_S3 - _S4 / nn) / nn) / nn) / nn) / n


# --- bd0.c, dpois.c ---------------------------------------------------------------------------------

# ebd0's bd0_scale: row i holds log(p/1024) for p = floor(1024 / (0.5 + i / 256) + 0.5) in four
# single-precision parts of 23 bits each (row 0 is log(2)); the floats are exact doubles too.
_BD0_SCALE_HEX: Final = """
    +0x1.62e430p-1 -0x1.05c610p-29 -0x1.950d88p-54 +0x1.d9cc02p-79
    +0x1.5ee02cp-1 -0x1.6dbe98p-25 -0x1.51e540p-50 +0x1.2bfa48p-74
    +0x1.5ad404p-1 +0x1.86b3e4p-26 +0x1.9f6534p-50 +0x1.54be04p-74
    +0x1.570124p-1 -0x1.9ed750p-25 -0x1.f37dd0p-51 +0x1.10b770p-77
    +0x1.5326e4p-1 -0x1.9b9874p-25 -0x1.378194p-49 +0x1.56feb2p-74
    +0x1.4f4528p-1 +0x1.aca70cp-28 +0x1.103e74p-53 +0x1.9c410ap-81
    +0x1.4b5bd8p-1 -0x1.6a91d8p-25 -0x1.8e43d0p-50 -0x1.afba9ep-77
    +0x1.47ae54p-1 -0x1.abb51cp-25 +0x1.19b798p-51 +0x1.45e09cp-76
    +0x1.43fa00p-1 -0x1.d06318p-25 -0x1.8858d8p-49 -0x1.1927c4p-75
    +0x1.3ffa40p-1 +0x1.1a427cp-25 +0x1.151640p-53 -0x1.4f5606p-77
    +0x1.3c7c80p-1 -0x1.19bf48p-34 +0x1.05fc94p-58 -0x1.c096fcp-82
    +0x1.38b320p-1 +0x1.6b5778p-25 +0x1.be38d0p-50 -0x1.075e96p-74
    +0x1.34e288p-1 +0x1.d9ce1cp-25 +0x1.316eb8p-49 +0x1.2d885cp-73
    +0x1.315124p-1 +0x1.c2fc60p-29 -0x1.4396fcp-53 +0x1.acf376p-78
    +0x1.2db954p-1 +0x1.720de4p-25 -0x1.d39b04p-49 -0x1.f11176p-76
    +0x1.2a1b08p-1 -0x1.562494p-25 +0x1.a7863cp-49 +0x1.85dd64p-73
    +0x1.267620p-1 +0x1.3430e0p-29 -0x1.96a958p-56 +0x1.f8e636p-82
    +0x1.23130cp-1 +0x1.7bebf4p-25 +0x1.416f1cp-52 -0x1.78dd36p-77
    +0x1.1faa34p-1 +0x1.70e128p-26 +0x1.81817cp-50 -0x1.c2179cp-76
    +0x1.1bf204p-1 +0x1.3a9620p-28 +0x1.2f94c0p-52 +0x1.9096c0p-76
    +0x1.187ce4p-1 -0x1.077870p-27 +0x1.655a80p-51 +0x1.eaafd6p-78
    +0x1.1501c0p-1 -0x1.406cacp-25 -0x1.e72290p-49 +0x1.5dd800p-73
    +0x1.11cb80p-1 +0x1.787cd0p-25 -0x1.efdc78p-51 -0x1.5380cep-77
    +0x1.0e4498p-1 +0x1.747324p-27 -0x1.024548p-51 +0x1.77a5a6p-75
    +0x1.0b036cp-1 +0x1.690c74p-25 +0x1.5d0cc4p-50 -0x1.c0e23cp-76
    +0x1.077070p-1 -0x1.a769bcp-27 +0x1.452234p-52 +0x1.6ba668p-76
    +0x1.04240cp-1 -0x1.a686acp-27 -0x1.ef46b0p-52 -0x1.5ce10cp-76
    +0x1.00d22cp-1 +0x1.fc0e10p-25 +0x1.6ee034p-50 -0x1.19a2ccp-74
    +0x1.faf588p-2 +0x1.ef1e64p-27 -0x1.26504cp-54 -0x1.b15792p-82
    +0x1.f4d87cp-2 +0x1.d7b980p-26 -0x1.a114d8p-50 +0x1.9758c6p-75
    +0x1.ee1414p-2 +0x1.2ec060p-26 +0x1.dc00fcp-52 +0x1.f8833cp-76
    +0x1.e7e32cp-2 -0x1.ac796cp-27 -0x1.a68818p-54 +0x1.235d02p-78
    +0x1.e108a0p-2 -0x1.768ba4p-28 -0x1.f050a8p-52 +0x1.00d632p-82
    +0x1.dac354p-2 -0x1.d3a6acp-30 +0x1.18734cp-57 -0x1.f97902p-83
    +0x1.d47424p-2 +0x1.7dbbacp-31 -0x1.d5ada4p-56 +0x1.56fcaap-81
    +0x1.ce1af0p-2 +0x1.70be7cp-27 +0x1.6f6fa4p-51 +0x1.7955a2p-75
    +0x1.c7b798p-2 +0x1.ec36ecp-26 -0x1.07e294p-50 -0x1.ca183cp-75
    +0x1.c1ef04p-2 +0x1.c1dfd4p-26 +0x1.888eecp-50 -0x1.fd6b86p-75
    +0x1.bb7810p-2 +0x1.478bfcp-26 +0x1.245b8cp-50 +0x1.ea9d52p-74
    +0x1.b59da0p-2 -0x1.882b08p-27 +0x1.31573cp-53 -0x1.8c249ap-77
    +0x1.af1294p-2 -0x1.b710f4p-27 +0x1.622670p-51 +0x1.128578p-76
    +0x1.a925d4p-2 -0x1.0ae750p-27 +0x1.574ed4p-51 +0x1.084996p-75
    +0x1.a33040p-2 +0x1.027d30p-29 +0x1.b9a550p-53 -0x1.b2e38ap-78
    +0x1.9d31c0p-2 -0x1.5ec12cp-26 -0x1.5245e0p-52 +0x1.2522d0p-79
    +0x1.972a34p-2 +0x1.135158p-30 +0x1.a5c09cp-56 +0x1.24b70ep-80
    +0x1.911984p-2 +0x1.0995d4p-26 +0x1.3bfb5cp-50 +0x1.2c9dd6p-75
    +0x1.8bad98p-2 -0x1.1d6144p-29 +0x1.5b9208p-53 +0x1.1ec158p-77
    +0x1.858b58p-2 -0x1.1b4678p-27 +0x1.56cab4p-53 -0x1.2fdc0cp-78
    +0x1.7f5fa0p-2 +0x1.3aaf48p-27 +0x1.461964p-51 +0x1.4ae476p-75
    +0x1.79db68p-2 -0x1.7e5054p-26 +0x1.673750p-51 -0x1.a11f7ap-76
    +0x1.744f88p-2 -0x1.cc0e18p-26 -0x1.1e9d18p-50 -0x1.6c06bcp-78
    +0x1.6e08ecp-2 -0x1.5d45e0p-26 -0x1.c73ec8p-50 +0x1.318d72p-74
    +0x1.686c80p-2 +0x1.e9b14cp-26 -0x1.13bbd4p-50 -0x1.efeb1cp-78
    +0x1.62c830p-2 -0x1.a8c70cp-27 -0x1.5a1214p-51 -0x1.bab3fcp-79
    +0x1.5d1bdcp-2 -0x1.4fec6cp-31 +0x1.423638p-56 +0x1.ee3feep-83
    +0x1.576770p-2 +0x1.7455a8p-26 -0x1.3ab654p-50 -0x1.26be4cp-75
    +0x1.5262e0p-2 -0x1.146778p-26 -0x1.b9f708p-52 -0x1.294018p-77
    +0x1.4c9f08p-2 +0x1.e152c4p-26 -0x1.dde710p-53 +0x1.fd2208p-77
    +0x1.46d2d8p-2 +0x1.c28058p-26 -0x1.936284p-50 +0x1.9fdd68p-74
    +0x1.41b940p-2 +0x1.cce0c0p-26 -0x1.1a4050p-50 +0x1.bc0376p-76
    +0x1.3bdd24p-2 +0x1.d6296cp-27 +0x1.425b48p-51 -0x1.cddb2cp-77
    +0x1.36b578p-2 -0x1.287ddcp-27 -0x1.2d0f4cp-51 +0x1.38447ep-75
    +0x1.31871cp-2 +0x1.2a8830p-27 +0x1.3eae54p-52 -0x1.898136p-77
    +0x1.2b9304p-2 -0x1.51d8b8p-28 +0x1.27694cp-52 -0x1.fd852ap-76
    +0x1.265620p-2 -0x1.d98f3cp-27 +0x1.a44338p-51 -0x1.56e85ep-78
    +0x1.211254p-2 +0x1.986160p-26 +0x1.73c5d0p-51 +0x1.4a861ep-75
    +0x1.1bc794p-2 +0x1.fa3918p-27 +0x1.879c5cp-51 +0x1.16107cp-78
    +0x1.1675ccp-2 -0x1.4545a0p-26 +0x1.c07398p-51 +0x1.f55c42p-76
    +0x1.111ce4p-2 +0x1.f72670p-37 -0x1.b84b5cp-61 +0x1.a4a4dcp-85
    +0x1.0c81d4p-2 +0x1.0c150cp-27 +0x1.218600p-51 -0x1.d17312p-76
    +0x1.071b84p-2 +0x1.fcd590p-26 +0x1.a3a2e0p-51 +0x1.fe5ef8p-76
    +0x1.01ade4p-2 -0x1.bb1844p-28 +0x1.db3cccp-52 +0x1.1f56fcp-77
    +0x1.fa01c4p-3 -0x1.12a0d0p-29 -0x1.f71fb0p-54 +0x1.e287a4p-78
    +0x1.ef0adcp-3 +0x1.7b8b28p-28 -0x1.35bce4p-52 -0x1.abc8f8p-79
    +0x1.e598ecp-3 +0x1.5a87e4p-27 -0x1.134bd0p-51 +0x1.c2cebep-76
    +0x1.da85d8p-3 -0x1.df31b0p-27 +0x1.94c16cp-57 +0x1.8fd7eap-82
    +0x1.d0fb80p-3 -0x1.bb5434p-28 -0x1.ea5640p-52 -0x1.8ceca4p-77
    +0x1.c765b8p-3 +0x1.e4d68cp-27 +0x1.5b59b4p-51 +0x1.76f6c4p-76
    +0x1.bdc46cp-3 -0x1.1cbb50p-27 +0x1.2da010p-51 +0x1.eb282cp-75
    +0x1.b27980p-3 -0x1.1b9ce0p-27 +0x1.7756f8p-52 +0x1.2ff572p-76
    +0x1.a8bed0p-3 -0x1.bbe874p-30 +0x1.85cf20p-56 +0x1.b9cf18p-80
    +0x1.9ef83cp-3 +0x1.2769a4p-27 -0x1.85bda0p-52 +0x1.8c8018p-79
    +0x1.9525a8p-3 +0x1.cf456cp-27 -0x1.7137d8p-52 -0x1.f158e8p-76
    +0x1.8b46f8p-3 +0x1.11b12cp-30 +0x1.9f2104p-54 -0x1.22836ep-78
    +0x1.83040cp-3 +0x1.2379e4p-28 +0x1.b71c70p-52 -0x1.990cdep-76
    +0x1.790ed4p-3 +0x1.dc4c68p-28 -0x1.910ac8p-52 +0x1.dd1bd6p-76
    +0x1.6f0d28p-3 +0x1.5cad68p-28 +0x1.737c94p-52 -0x1.9184bap-77
    +0x1.64fee8p-3 +0x1.04bf88p-28 +0x1.6fca28p-52 +0x1.8884a8p-76
    +0x1.5c9400p-3 +0x1.d65cb0p-29 -0x1.b2919cp-53 +0x1.b99bcep-77
    +0x1.526e60p-3 -0x1.c5e4bcp-27 -0x1.0ba380p-52 +0x1.d6e3ccp-79
    +0x1.483bccp-3 +0x1.9cdc7cp-28 -0x1.5ad8dcp-54 -0x1.392d3cp-83
    +0x1.3fb25cp-3 -0x1.a6ad74p-27 +0x1.5be6b4p-52 -0x1.4e0114p-77
    +0x1.371fc4p-3 -0x1.fe1708p-27 -0x1.78864cp-52 -0x1.27543ap-76
    +0x1.2cca10p-3 -0x1.4141b4p-28 -0x1.ef191cp-52 +0x1.00ee08p-76
    +0x1.242310p-3 +0x1.3ba510p-27 -0x1.d003c8p-51 +0x1.162640p-76
    +0x1.1b72acp-3 +0x1.52f67cp-27 -0x1.fd6fa0p-51 +0x1.1a3966p-77
    +0x1.10f8e4p-3 +0x1.129cd8p-30 +0x1.31ef30p-55 +0x1.a73e38p-79
    +0x1.08338cp-3 -0x1.005d7cp-27 -0x1.661a9cp-51 +0x1.1f138ap-79
    +0x1.fec914p-4 -0x1.c482a8p-29 -0x1.55746cp-54 +0x1.99f932p-80
    +0x1.ed1794p-4 +0x1.d06f00p-29 +0x1.75e45cp-53 -0x1.d0483ep-78
    +0x1.db5270p-4 +0x1.87d928p-32 -0x1.0f52a4p-57 +0x1.81f4a6p-84
    +0x1.c97978p-4 +0x1.af1d24p-29 -0x1.0977d0p-60 -0x1.8839d0p-84
    +0x1.b78c84p-4 -0x1.44f124p-28 -0x1.ef7bc4p-52 +0x1.9e0650p-78
    +0x1.a58b60p-4 +0x1.856464p-29 +0x1.c651d0p-55 +0x1.b06b0cp-79
    +0x1.9375e4p-4 +0x1.5595ecp-28 +0x1.dc3738p-52 +0x1.86c89ap-81
    +0x1.814be4p-4 -0x1.c073fcp-28 -0x1.371f88p-53 -0x1.5f4080p-77
    +0x1.6f0d28p-4 +0x1.5cad68p-29 +0x1.737c94p-53 -0x1.9184bap-78
    +0x1.60658cp-4 -0x1.6c8af4p-28 +0x1.d8ef74p-55 +0x1.c4f792p-80
    +0x1.4e0110p-4 +0x1.146b5cp-29 +0x1.73f7ccp-54 -0x1.d28db8p-79
    +0x1.3b8758p-4 +0x1.8b1b70p-28 -0x1.20aca4p-52 -0x1.651894p-76
    +0x1.28f834p-4 +0x1.43b6a4p-30 -0x1.452af8p-55 +0x1.976892p-80
    +0x1.1a0fbcp-4 -0x1.e4075cp-28 +0x1.1fe618p-52 +0x1.9d6dc2p-77
    +0x1.075984p-4 -0x1.4ce370p-29 -0x1.d9fc98p-53 +0x1.4ccf12p-77
    +0x1.f0a30cp-5 +0x1.162a68p-37 -0x1.e83368p-61 -0x1.d222a6p-86
    +0x1.cae730p-5 -0x1.1a8f7cp-31 -0x1.5f9014p-55 +0x1.2720c0p-79
    +0x1.ac9724p-5 -0x1.e8ee08p-29 +0x1.a7de04p-54 -0x1.9bba74p-78
    +0x1.868a84p-5 -0x1.ef8128p-30 +0x1.dc5eccp-54 -0x1.58d250p-79
    +0x1.67f950p-5 -0x1.ed684cp-30 -0x1.f060c0p-55 -0x1.b1294cp-80
    +0x1.494accp-5 +0x1.a6c890p-32 -0x1.c3ad48p-56 -0x1.6dc66cp-84
    +0x1.22c71cp-5 -0x1.8abe2cp-32 -0x1.7e7078p-56 -0x1.ddc3dcp-86
    +0x1.03d5d8p-5 +0x1.79cfbcp-31 -0x1.da7c4cp-58 +0x1.4e7582p-83
    +0x1.c98d18p-6 +0x1.a01904p-31 -0x1.854164p-55 +0x1.883c36p-79
    +0x1.8b31fcp-6 -0x1.356500p-30 +0x1.c3ab48p-55 +0x1.b69bdap-80
    +0x1.3cea44p-6 +0x1.a352bcp-33 -0x1.8865acp-57 -0x1.48159cp-81
    +0x1.fc0a8cp-7 -0x1.e07f84p-32 +0x1.e7cf6cp-58 +0x1.3a69c0p-82
    +0x1.7dc474p-7 +0x1.f810a8p-31 -0x1.245b5cp-56 -0x1.a1f4f8p-80
    +0x1.fe02a8p-8 -0x1.4ef988p-32 +0x1.1f86ecp-57 +0x1.20723cp-81
    +0x1.ff00acp-9 -0x1.d4ef44p-33 +0x1.2821acp-63 +0x1.5a6d32p-87
    0 0 0 0
"""
_BD0_SCALE: Final = tuple(tuple(float.fromhex(v) for v in row.split()) for row in _BD0_SCALE_HEX.strip().splitlines())


def _ebd0(x: float, m: float) -> tuple[float, float]:
    """R 4.2's ``ebd0``: x log(x/M) + M - x as the unevaluated sum yh + yl (Welinder, PR#15628)."""
    if x == m:
        return 0.0, 0.0
    if x == 0:
        return m, 0.0
    if m == 0:
        return _INF, 0.0
    if m / x == _INF:
        return m, 0.0
    r, e = math.frexp(m / x)  # m/x = r * 2^e, r in [0.5, 1)
    if _M_LN2 * float(-e) > 1. + _DBL_MAX / x:  # prevent later overflow
        return _INF, 0.0
    i = int(_floor((r - 0.5) * (2 * 128) + 0.5))
    f = _floor(1024.0 / (0.5 + i / (2.0 * 128)) + 0.5)
    fg = _ldexp(f, -(e + 10))
    if fg == _INF:
        return fg, 0.0
    yh = yl = 0.0

    def add1(d: float) -> None:  # ADD1: the integer part of d to yh, the rest to yl
        nonlocal yh, yl
        d1 = _floor(d + 0.5)
        yh += d1
        yl += d - d1

    add1(-x * _log1pmx((m * fg - x) / x))
    if fg == 1:
        return yh, yl
    row = _BD0_SCALE[i]
    row0 = _BD0_SCALE[0]
    for j in range(4):
        add1(x * row[j])  # x * log(fg * 2^e)
        add1(-x * row0[j] * e)  # x * log(1 / 2^e)
        if not math.isfinite(yh):
            return _INF, 0.0
    add1(m)
    add1(-m * fg)
    return yh, yl


_X_LRG: Final = 2.86111748575702815380240589208115399625e+307  # 2^1023 / pi


def _dpois_raw(x: float, lam: float, give_log: bool) -> float:
    """R 4.2's ``dpois_raw``: lam^x exp(-lam) / Gamma(x + 1), x >= 0 not necessarily integer."""
    zero = -_INF if give_log else 0.0
    if lam == 0:
        return (0.0 if give_log else 1.0) if x == 0 else zero
    if not math.isfinite(lam) or x < 0:
        return zero
    if x <= lam * _DBL_MIN:
        return -lam if give_log else _exp(-lam)
    if lam < x * _DBL_MIN:
        if not math.isfinite(x):
            return zero
        v = -lam + x * _log(lam) - _lgammafn(x + 1)
        return v if give_log else _exp(v)
    yh, yl = _ebd0(x, lam)
    yl += _stirlerr(x)
    lrg_x = x >= _X_LRG  # 2 pi x would overflow
    r = _M_SQRT_2PI * math.sqrt(x) if lrg_x else _M_2PI * x
    if give_log:
        return -yl - yh - (_log(r) if lrg_x else 0.5 * _log(r))
    return _exp(-yl) * _exp(-yh) / (r if lrg_x else math.sqrt(r))


# --- pgamma.c ------------------------------------------------------------------------------------

_SCALEFACTOR: Final = 2.0**256  # (2^32)^8
_M_CUTOFF: Final = _M_LN2 * 1024 / _DBL_EPSILON  # M_LN2 * DBL_MAX_EXP / DBL_EPSILON
_LGAMMA1P_COEFFS: Final = (  # (zeta(i + 2) - 1) / (i + 2), i = 0..39
    0.3224670334241132182362075833230126e-0, 0.6735230105319809513324605383715000e-1,
    0.2058080842778454787900092413529198e-1, 0.7385551028673985266273097291406834e-2,
    0.2890510330741523285752988298486755e-2, 0.1192753911703260977113935692828109e-2,
    0.5096695247430424223356548135815582e-3, 0.2231547584535793797614188036013401e-3,
    0.9945751278180853371459589003190170e-4, 0.4492623673813314170020750240635786e-4,
    0.2050721277567069155316650397830591e-4, 0.9439488275268395903987425104415055e-5,
    0.4374866789907487804181793223952411e-5, 0.2039215753801366236781900709670839e-5,
    0.9551412130407419832857179772951265e-6, 0.4492469198764566043294290331193655e-6,
    0.2120718480555466586923135901077628e-6, 0.1004322482396809960872083050053344e-6,
    0.4769810169363980565760193417246730e-7, 0.2271109460894316491031998116062124e-7,
    0.1083865921489695409107491757968159e-7, 0.5183475041970046655121248647057669e-8,
    0.2483674543802478317185008663991718e-8, 0.1192140140586091207442548202774640e-8,
    0.5731367241678862013330194857961011e-9, 0.2759522885124233145178149692816341e-9,
    0.1330476437424448948149715720858008e-9, 0.6422964563838100022082448087644648e-10,
    0.3104424774732227276239215783404066e-10, 0.1502138408075414217093301048780668e-10,
    0.7275974480239079662504549924814047e-11, 0.3527742476575915083615072228655483e-11,
    0.1711991790559617908601084114443031e-11, 0.8315385841420284819798357793954418e-12,
    0.4042200525289440065536008957032895e-12, 0.1966475631096616490411045679010286e-12,
    0.9573630387838555763782200936508615e-13, 0.4664076026428374224576492565974577e-13,
    0.2273736960065972320633279596737272e-13, 0.1109139947083452201658320007192334e-13,
)
_EULERS_CONST: Final = 0.5772156649015328606065120900824024
_ZETA_42_M1: Final = 0.2273736845824652515226821577978691e-12  # zeta(N + 2) - 1, N = 40


def _logcf(x: float, i: float, d: float, eps: float) -> float:
    """Continued fraction for sum_{k>=0} x^k / (i + k d)."""
    c1 = 2 * d
    c2 = i + d
    c4 = c2 + d
    a1 = c2
    b1 = i * (c2 - i * x)
    b2 = d * d * x
    a2 = c4 * c2 - b2
    b2 = c4 * b1 - i * b2
    while abs(a2 * b1 - a1 * b2) > abs(eps * b1 * b2):
        c3 = c2 * c2 * x
        c2 += d
        c4 += d
        a1 = c4 * a2 - c3 * a1
        b1 = c4 * b2 - c3 * b1
        c3 = c1 * c1 * x
        c1 += d
        c4 += d
        a2 = c4 * a1 - c3 * a2
        b2 = c4 * b1 - c3 * b2
        if abs(b2) > _SCALEFACTOR:
            a1 /= _SCALEFACTOR
            b1 /= _SCALEFACTOR
            a2 /= _SCALEFACTOR
            b2 /= _SCALEFACTOR
        elif abs(b2) < 1 / _SCALEFACTOR:
            a1 *= _SCALEFACTOR
            b1 *= _SCALEFACTOR
            a2 *= _SCALEFACTOR
            b2 *= _SCALEFACTOR
    return a2 / b2


def _log1pmx(x: float) -> float:
    """log(1 + x) - x, accurately also for small x."""
    if x > 1 or x < -0.79149064:
        return _log1p(x) - x
    r = x / (2 + x)
    y = r * r
    if abs(x) < 1e-2:
        return r * ((((2.0 / 9 * y + 2.0 / 7) * y + 2.0 / 5) * y + 2.0 / 3) * y - x)
    return r * (2 * y * _logcf(y, 3, 2, 1e-14) - x)


def _lgamma1p(a: float) -> float:
    """log(Gamma(a + 1)), accurately also for small a."""
    if abs(a) >= 0.5:
        return _lgammafn(a + 1)
    lgam = _ZETA_42_M1 * _logcf(-a / 2, 40 + 2, 1, 1e-14)
    for coef in reversed(_LGAMMA1P_COEFFS):
        lgam = coef - a * lgam
    return (a * lgam - _EULERS_CONST) * a - _log1pmx(a)


def _dpois_wrap(x_plus_1: float, lam: float, give_log: bool) -> float:
    """dpois(x_plus_1 - 1, lam)."""
    if not math.isfinite(lam):
        return -_INF if give_log else 0.0
    if x_plus_1 > 1:
        return _dpois_raw(x_plus_1 - 1, lam, give_log)
    if lam > abs(x_plus_1 - 1) * _M_CUTOFF:
        v = -lam - _lgammafn(x_plus_1)
        return v if give_log else _exp(v)
    d = _dpois_raw(x_plus_1, lam, give_log)
    return d + _log(x_plus_1 / lam) if give_log else d * (x_plus_1 / lam)


def _pgamma_smallx(x: float, alph: float, lower_tail: bool, log_p: bool) -> float:
    """Abramowitz and Stegun 6.5.29, for x < 1."""
    total = 0.0
    c = alph
    n = 0.0
    while True:
        n += 1
        c *= -x / n
        term = c / (alph + n)
        total += term
        if not abs(term) > _DBL_EPSILON * abs(total):
            break
    if lower_tail:
        f1 = _log1p(total) if log_p else 1 + total
        if alph > 1:
            f2 = _dpois_raw(alph, x, log_p)
            f2 = f2 + x if log_p else f2 * _exp(x)
        elif log_p:
            f2 = alph * _log(x) - _lgamma1p(alph)
        else:
            f2 = math.pow(x, alph) / _exp(_lgamma1p(alph))
        return f1 + f2 if log_p else f1 * f2
    lf2 = alph * _log(x) - _lgamma1p(alph)
    if log_p:
        return _log1_exp(_log1p(total) + lf2)
    f1m1 = total
    f2m1 = _expm1(lf2)
    return -(f1m1 + f2m1 + f1m1 * f2m1)


def _pd_upper_series(x: float, y: float, log_p: bool) -> float:
    term = x / y
    total = term
    while True:
        y += 1
        term *= x / y
        total += term
        if not term > total * _DBL_EPSILON:
            break
    return _log(total) if log_p else total


def _pd_lower_cf(y: float, d: float) -> float:
    """Continued fraction for the scaled upper tail, ~ (y / d) (1 + (1 - y) / d + ...)."""
    if y == 0:
        return 0.0
    f0 = y / d
    if abs(y - 1) < abs(d) * _DBL_EPSILON:
        return f0
    if f0 > 1.:
        f0 = 1.
    c2 = y
    c4 = d
    a1 = 0.0
    b1 = 1.0
    a2 = y
    b2 = d
    while b2 > _SCALEFACTOR:
        a1 /= _SCALEFACTOR
        b1 /= _SCALEFACTOR
        a2 /= _SCALEFACTOR
        b2 /= _SCALEFACTOR
    i = 0.0
    of = -1.
    f = 0.0
    while i < 200000:
        i += 1
        c2 -= 1
        c3 = i * c2
        c4 += 2
        a1 = c4 * a2 + c3 * a1
        b1 = c4 * b2 + c3 * b1
        i += 1
        c2 -= 1
        c3 = i * c2
        c4 += 2
        a2 = c4 * a1 + c3 * a2
        b2 = c4 * b1 + c3 * b2
        if b2 > _SCALEFACTOR:
            a1 /= _SCALEFACTOR
            b1 /= _SCALEFACTOR
            a2 /= _SCALEFACTOR
            b2 /= _SCALEFACTOR
        if b2 != 0:
            f = a2 / b2
            if abs(f - of) <= _DBL_EPSILON * _fmax2(f0, abs(f)):
                return f
            of = f
    return f  # R warns of non-convergence here


def _pd_lower_series(lam: float, y: float) -> float:
    term = 1.0
    total = 0.0
    while y >= 1 and term > total * _DBL_EPSILON:
        term *= y / lam
        total += term
        y -= 1
    if y != _floor(y):
        total += term * _pd_lower_cf(y, lam + 1 - y)
    return total


def _dpnorm(x: float, lower_tail: bool, lp: float) -> float:
    """dnorm(x) / pnorm(x, lower_tail), with lp = pnorm(x, lower_tail, log = TRUE)."""
    if x < 0:
        x = -x
        lower_tail = not lower_tail
    if x > 10 and not lower_tail:
        term = 1 / x
        total = term
        x2 = x * x
        i = 1.0
        while True:
            term *= -i / x2
            total += term
            i += 2
            if not abs(term) > _DBL_EPSILON * total:
                break
        return 1 / total
    return _dnorm(x) / _exp(lp)


_COEFS_A: Final = (2 / 3., -4 / 135., 8 / 2835., 16 / 8505., -8992 / 12629925., -334144 / 492567075.,
                   698752 / 1477701225.)
_COEFS_B: Final = (1 / 12., 1 / 288., -139 / 51840., -571 / 2488320., 163879 / 209018880.,
                   5246819 / 75246796800., -534703531 / 902961561600.)


def _ppois_asymp(x: float, lam: float, lower_tail: bool, log_p: bool) -> float:
    """Asymptotic expansion of the Poisson probability P[X <= x], X ~ Poisson(lam)."""
    dfm = lam - x
    pt_ = -_log1pmx(dfm / x)
    s2pt = _sqrt(2 * x * pt_)
    if dfm < 0:
        s2pt = -s2pt
    res12 = 0.0
    res1_ig = res1_term = math.sqrt(x)
    res2_ig = res2_term = s2pt
    for i in range(1, 8):
        res12 += res1_ig * _COEFS_A[i - 1]
        res12 += res2_ig * _COEFS_B[i - 1]
        res1_term *= pt_ / i
        res2_term *= 2 * pt_ / (2 * i + 1)
        res1_ig = res1_ig / x + res1_term
        res2_ig = res2_ig / x + res2_term
    elfb = x
    elfb_term = 1.0
    for i in range(1, 8):
        elfb += elfb_term * _COEFS_B[i - 1]
        elfb_term /= x
    if not lower_tail:
        elfb = -elfb
    f = res12 / elfb
    np_ = _pnorm(s2pt, not lower_tail, log_p)
    if log_p:
        return np_ + _log1p(f * _dpnorm(s2pt, not lower_tail, np_))
    return np_ + f * _dnorm(s2pt)


_DBL_MIN_OVER_EPS: Final = _DBL_MIN / _DBL_EPSILON  # 2^-970


def _pgamma_raw(x: float, alph: float, lower_tail: bool, log_p: bool) -> float:
    """R's ``pgamma_raw``: P[X <= x] (or P[X > x]) for X ~ Gamma(alph, 1); x, alph not NaN, alph > 0."""
    if x <= 0.0:
        return (-_INF if log_p else 0.0) if lower_tail else (0.0 if log_p else 1.0)
    if x >= _INF:
        return (0.0 if log_p else 1.0) if lower_tail else (-_INF if log_p else 0.0)
    if x < 1:
        res = _pgamma_smallx(x, alph, lower_tail, log_p)
    elif x <= alph - 1 and x < 0.8 * (alph + 50):  # large alph compared to x
        total = _pd_upper_series(x, alph, log_p)  # x/alph + o(x/alph)
        d = _dpois_wrap(alph, x, log_p)
        if not lower_tail:
            res = _log1_exp(d + total) if log_p else 1 - d * total
        else:
            res = total + d if log_p else total * d
    elif alph - 1 < x and alph < 0.8 * (x + 50):  # large x compared to alph
        d = _dpois_wrap(alph, x, log_p)
        if alph < 1:
            if x * _DBL_EPSILON > 1 - alph:
                total = 0.0 if log_p else 1.0
            else:
                f = _pd_lower_cf(alph, x - (alph - 1)) * x / alph
                total = _log(f) if log_p else f
        else:
            total = _pd_lower_series(x, alph - 1)  # (alph-1)/x + o((alph-1)/x)
            total = _log1p(total) if log_p else 1 + total
        if not lower_tail:
            res = total + d if log_p else total * d
        else:
            res = _log1_exp(d + total) if log_p else 1 - d * total
    else:  # x >= 1 and x fairly near alph
        res = _ppois_asymp(alph - 1, x, not lower_tail, log_p)
    if not log_p and res < _DBL_MIN_OVER_EPS:
        # Accuracy is lost to underflow near DBL_MIN: redo on the log scale.
        return _exp(_pgamma_raw(x, alph, lower_tail, True))
    return res


def _pgamma(x: float, alph: float, scale: float, lower_tail: bool, log_p: bool) -> float:
    """R's ``pgamma(x, shape = alph, scale = scale, lower.tail, log.p)``."""
    if math.isnan(x) or math.isnan(alph) or math.isnan(scale):
        return x + alph + scale
    if alph < 0. or scale <= 0.:
        return math.nan
    x /= scale
    if math.isnan(x):
        return x
    if alph == 0.:
        if x <= 0:
            return (-_INF if log_p else 0.0) if lower_tail else (0.0 if log_p else 1.0)
        return (0.0 if log_p else 1.0) if lower_tail else (-_INF if log_p else 0.0)
    return _pgamma_raw(x, alph, lower_tail, log_p)


def _pchisq(q: float, df: float, lower_tail: bool = False, log_p: bool = False) -> float:
    """R's ``pchisq(q, df, lower_tail, log_p)`` = pgamma(q, df / 2, scale = 2)."""
    return _pgamma(q, df / 2., 2., lower_tail, log_p)


def pchisq_upper(q: FloatArray, df: int) -> FloatArray:
    """R's ``pchisq(q, df, lower.tail = FALSE)`` elementwise, bit for bit (see the module notes)."""
    flat = np.asarray(q, dtype=np.float64).ravel()
    dff = float(df)
    out = np.fromiter((_pchisq(float(v), dff) for v in flat), dtype=np.float64, count=flat.size)
    return out.reshape(np.shape(q))
